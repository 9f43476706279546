//! Reading a [`TrainConfig`]: TOML text or files (parse errors name the file and line), the
//! bundled presets in `configs/`, and the resolved TOML written into each run folder.

use std::path::{Path, PathBuf};

use super::TrainConfig;
use crate::error::{Result, TrainError};

/// The directory of the bundled presets (`configs/` at the workspace root).
pub fn presets_dir() -> PathBuf {
    let cwd = PathBuf::from("configs");
    if cwd.is_dir() {
        return cwd;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

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

    /// Loads the bundled preset `configs/<name>.toml`.
    pub fn preset(name: &str) -> Result<Self> {
        let dir = presets_dir();
        let path = dir.join(format!("{name}.toml"));
        if !path.is_file() {
            return Err(TrainError::UnknownPreset {
                name: name.into(),
                path,
                available: Self::presets().join(", "),
            });
        }
        Self::from_toml_file(path)
    }

    /// Names of the bundled presets, sorted.
    pub fn presets() -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(presets_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let p = e.path();
                if p.extension()? != "toml" {
                    return None;
                }
                Some(p.file_stem()?.to_string_lossy().into_owned())
            })
            .collect();
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
    text[..pos.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}
