//! `model.json`: the backbone shape, the preprocessing the model was trained with, and the
//! training facts (loss, protocol, fold) a report shows. Training writes it before the first
//! step; `eval`, `verify`, `embed` and the report read it.

use std::path::Path;

use arcface_backbone::Config;
use arcface_data::Preprocess;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// `model.json` of a run folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Backbone shape.
    pub backbone: Config,
    /// Preprocessing the model was trained with.
    pub preprocess: Preprocess,
    /// Loss name (e.g. `arcface`).
    #[serde(default)]
    pub loss: String,
    /// Training protocol (`dev`, `view2`, `folder`, ...).
    #[serde(default)]
    pub protocol: String,
    /// Held-out view2 fold, if any.
    #[serde(default)]
    pub fold: Option<usize>,
}

impl ModelInfo {
    /// A model known only by its shape (a bare weight file): default LFW preprocessing.
    pub fn bare(backbone: Config) -> Self {
        Self {
            backbone,
            preprocess: Preprocess::default(),
            loss: String::new(),
            protocol: String::new(),
            fold: None,
        }
    }

    /// The LFW protocol the model was trained under, when it was one (`dev`, `view2:k`):
    /// the natural pairs to evaluate it on.
    pub fn lfw_protocol(&self) -> Option<arcface_data::Protocol> {
        arcface_data::Protocol::from_name(&self.protocol, self.fold).ok()
    }

    /// Reads a `model.json`.
    pub fn read(path: &Path) -> Result<Self> {
        super::read_json(path)
    }

    /// Writes a `model.json` atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        super::write_json(path, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let run = super::super::RunDir::new(dir.path());
        let info = ModelInfo {
            backbone: Config::from_name("r18").unwrap(),
            preprocess: Preprocess::default(),
            loss: "arcface".into(),
            protocol: "view2".into(),
            fold: Some(3),
        };
        run.write_model_info(&info).unwrap();
        assert_eq!(run.model_info().unwrap(), info);
        assert_eq!(info.lfw_protocol().unwrap().to_string(), "view2:3");
    }
}
