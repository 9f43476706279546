//! Reading a [`TrainConfig`]: TOML text or files (parse errors name the file and line), the
//! presets compiled in from `configs/`, and the resolved TOML written into each run folder.

use std::path::{Path, PathBuf};

use super::TrainConfig;
use crate::error::{Result, TrainError};

/// The bundled presets: name and TOML text, compiled in so that the crate finds them from any
/// working directory (`configs/*.toml` in the repository stay the readable source; a test
/// checks that every file there is listed here).
pub const PRESETS: &[(&str, &str)] = &[
    ("ci", include_str!("../../../../configs/ci.toml")),
    ("quick", include_str!("../../../../configs/quick.toml")),
    ("r34_arcface", include_str!("../../../../configs/r34_arcface.toml")),
    ("r34_softmax", include_str!("../../../../configs/r34_softmax.toml")),
    ("r50_arcface", include_str!("../../../../configs/r50_arcface.toml")),
    ("standard", include_str!("../../../../configs/standard.toml")),
    ("study_full", include_str!("../../../../configs/study_full.toml")),
    ("study_quick", include_str!("../../../../configs/study_quick.toml")),
];

impl TrainConfig {
    /// Parses and validates a TOML file.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        Self::from_toml_str(&text, path)
    }

    /// Parses and validates TOML text; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Self> {
        let cfg: TrainConfig = toml::from_str(text).map_err(|e| TrainError::ConfigParse {
            path: origin.to_path_buf(),
            line: e.span().map(|s| line_of(text, s.start)).unwrap_or(0),
            msg: e.message().to_string(),
        })?;
        cfg.validate_with(Some(text), origin)?;
        Ok(cfg)
    }

    /// The bundled preset `name` (errors name it as `configs/<name>.toml`).
    pub fn preset(name: &str) -> Result<Self> {
        let Some((_, text)) = PRESETS.iter().find(|(n, _)| *n == name) else {
            return Err(TrainError::UnknownPreset {
                name: name.into(),
                available: Self::presets().join(", "),
            });
        };
        Self::from_toml_str(text, &PathBuf::from(format!("configs/{name}.toml")))
    }

    /// A preset name or a TOML file: a spec ending in `.toml` or holding a path separator is a
    /// file, anything else a preset.
    pub fn from_spec(spec: &str) -> Result<Self> {
        if spec.ends_with(".toml") || spec.contains(['/', '\\']) {
            Self::from_toml_file(spec)
        } else {
            Self::preset(spec)
        }
    }

    /// Names of the bundled presets, sorted.
    pub fn presets() -> Vec<&'static str> {
        let mut names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
        names.sort();
        names
    }

    /// The resolved configuration as TOML (every default written out).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot serialize: {e}\n"))
    }
}

/// 1-based line of byte offset `pos`.
fn line_of(text: &str, pos: usize) -> usize {
    text[..pos.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}
