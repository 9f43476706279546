//! Loading a trained model for inference: from a run folder (`model.json` with the backbone
//! config and preprocessing, `model.safetensors` with InsightFace key names) or from a bare
//! weight file (`.safetensors` or InsightFace `backbone.pth`) plus a backbone preset name,
//! which gets the default LFW preprocessing.

use std::path::{Path, PathBuf};

use arcface_backbone::{Config, IResNet};
use arcface_data::Preprocess;
use candle::Device;
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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
    /// Training protocol (`dev`, `view2`, ...).
    #[serde(default)]
    pub protocol: String,
    /// Held-out view2 fold, if any.
    #[serde(default)]
    pub fold: Option<usize>,
}

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSource {
    /// A run folder with `model.json` and `model.safetensors`.
    Run(PathBuf),
    /// A weight file (`.safetensors` or InsightFace `.pth`) and a backbone name (`r50`).
    Weights {
        /// The weight file.
        path: PathBuf,
        /// Backbone preset name.
        backbone: String,
    },
}

/// A model ready for inference.
pub struct LoadedModel {
    /// The network (use `forward_t(x, false)`).
    pub net: IResNet,
    /// Its variables.
    pub varmap: VarMap,
    /// Shape, preprocessing and training facts.
    pub info: ModelInfo,
    /// The run folder, when loaded from one.
    pub run_dir: Option<PathBuf>,
    /// The device the weights live on.
    pub device: Device,
}

/// Reads a run's `model.json`.
pub fn read_model_info(run_dir: &Path) -> Result<ModelInfo> {
    let path = run_dir.join("model.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::format(&path, e.to_string()))
}

/// Loads a model on `device`.
pub fn load_model(source: &ModelSource, device: &Device) -> Result<LoadedModel> {
    load_model_with(source, device, &arcface_backbone::KernelOptions::default())
}

/// As [`load_model`], with the backbone on the kernels `kernels` chooses.
pub fn load_model_with(
    source: &ModelSource,
    device: &Device,
    kernels: &arcface_backbone::KernelOptions,
) -> Result<LoadedModel> {
    let (info, weights, run_dir) = match source {
        ModelSource::Run(dir) => {
            let info = read_model_info(dir)?;
            let weights = dir.join("model.safetensors");
            if !weights.is_file() {
                return Err(Error::format(
                    &weights,
                    "missing: the run has no final weights (did training finish?)",
                ));
            }
            (info, weights, Some(dir.clone()))
        }
        ModelSource::Weights { path, backbone } => {
            let config = Config::from_name(backbone).ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown backbone {backbone:?} (expected r18, r34, r50 or r100)"
                ))
            })?;
            let info = ModelInfo {
                backbone: config,
                preprocess: Preprocess::default(),
                loss: String::new(),
                protocol: String::new(),
                fold: None,
            };
            (info, path.clone(), None)
        }
    };
    let (net, varmap) = arcface_backbone::load_model_with(&info.backbone, kernels, &weights, device)
        .map_err(|e| Error::Backbone(e.to_string()))?;
    Ok(LoadedModel {
        net,
        varmap,
        info,
        run_dir,
        device: device.clone(),
    })
}
