//! Validation of a parsed [`TrainConfig`]: the ranges each section's owner documents, run
//! before any work starts. Names and keys are already checked by serde; what is left are the
//! values a type cannot rule out (a negative rate, a warm-up longer than the run).
//!
//! Errors name the dotted key (`schedule.lr`) and, when the TOML text is known, the 1-based
//! line where the key is set (or its table header when the key was left to its default).

use std::path::Path;

use arcface_data::Protocol;

use super::{DataSource, TrainConfig};
use crate::error::{Result, TrainError};

impl TrainConfig {
    /// Validates a configuration built in code (errors carry no line).
    pub fn validate(&self) -> Result<()> {
        self.validate_with(None, Path::new("<config>"))
    }

    /// Validates the sections in file order, except that the loop comes before the schedule,
    /// whose warm-up is checked against the number of epochs; `text` (the TOML source) gives
    /// error lines.
    pub(super) fn validate_with(&self, text: Option<&str>, origin: &Path) -> Result<()> {
        let at = Site { text, origin };
        check_name(&self.name, &at)?;
        self.check_data(&at)?;
        self.augment.validate().or_else(|(key, msg)| at.fail("augment", key, msg))?;
        self.check_model(&at)?;
        self.check_loss(&at)?;
        self.optim.validate().or_else(|(key, msg)| at.fail("optim", key, msg))?;
        self.check_loop(&at)?;
        self.check_schedule(&at)
    }

    /// `[data]`: a training protocol or a folder, and the image filters.
    fn check_data(&self, at: &Site) -> Result<()> {
        let d = &self.data;
        match d.source {
            DataSource::Lfw if d.protocol == Protocol::Pairs => {
                at.fail("data", "protocol", "`pairs` has no training set (use dev or view2:<fold>)".into())
            }
            DataSource::Folder if d.folder.is_none() => {
                at.fail("data", "folder", "source = \"folder\" needs `folder = \"path\"`".into())
            }
            _ if d.min_images == 0 => at.fail("data", "min_images", "must be at least 1".into()),
            _ if d.crop.is_some_and(|[_, _, w, h]| w == 0 || h == 0) => {
                at.fail("data", "crop", "width and height must be positive".into())
            }
            _ => Ok(()),
        }
    }

    /// `[model]`: the backbone crate validates the shape; the key is the field its message names.
    fn check_model(&self, at: &Site) -> Result<()> {
        let Err(msg) = self.backbone_config() else {
            return Ok(());
        };
        let key = ["input_size", "width", "dropout", "num_features"]
            .into_iter()
            .find(|k| msg.contains(k))
            .unwrap_or("backbone");
        at.fail("model", key, msg)
    }

    /// `[loss]`: the scale, sub-centers, label smoothing, and the margin's ranges as the loss crate documents them.
    fn check_loss(&self, at: &Site) -> Result<()> {
        let scale = self.loss.scale;
        if !(scale.is_finite() && scale > 0.0) {
            return at.fail("loss", "scale", format!("must be positive, got {scale}"));
        }
        if self.loss.sub_centers == 0 {
            return at.fail("loss", "sub_centers", "must be at least 1".into());
        }
        let eps = self.loss.label_smoothing;
        if !(0.0..1.0).contains(&eps) {
            return at.fail("loss", "label_smoothing", format!("must be in [0, 1), got {eps}"));
        }
        self.loss.margin.validate().or_else(|e| at.fail("loss", "margin", e.to_string()))
    }

    /// `[schedule]`: a positive rate, a warm-up that ends before the run does, the decay.
    fn check_schedule(&self, at: &Site) -> Result<()> {
        let s = &self.schedule;
        if !(s.lr.is_finite() && s.lr > 0.0) {
            return at.fail("schedule", "lr", format!("must be positive and finite, got {}", s.lr));
        }
        if !(s.warmup_epochs >= 0.0 && s.warmup_epochs < self.train.epochs as f64) {
            let msg = format!("must be in [0, epochs = {}), got {}", self.train.epochs, s.warmup_epochs);
            return at.fail("schedule", "warmup_epochs", msg);
        }
        s.decay.validate().or_else(|(key, msg)| at.fail("schedule", "decay", format!("{key} {msg}")))
    }

    /// `[train]`.
    fn check_loop(&self, at: &Site) -> Result<()> {
        let t = &self.train;
        let at_least = |key: &str, value: u64, min: u64, why: &str| {
            if value < min {
                at.fail("train", key, format!("must be at least {min}{why}, got {value}"))
            } else {
                Ok(())
            }
        };
        at_least("epochs", t.epochs as u64, 1, "")?;
        at_least("batch_size", t.batch_size as u64, 2, " (batch norm)")?;
        at_least("log_every", t.log_every, 1, "")?;
        at_least("keep_checkpoints", t.keep_checkpoints as u64, 1, "")?;
        at_least("eval_batch_size", t.eval_batch_size as u64, 1, "")?;
        at_least("validate_every", t.validate_every as u64, 1, " (epochs)")?;
        if !(t.grad_clip.is_finite() && t.grad_clip >= 0.0) {
            return at.fail("train", "grad_clip", format!("must be >= 0, got {}", t.grad_clip));
        }
        Ok(())
    }
}

/// Where validation errors point: the source text, for line numbers, and its name.
struct Site<'a> {
    text: Option<&'a str>,
    origin: &'a Path,
}

impl Site<'_> {
    /// The error for `[section] key` (`section` empty: a top-level key).
    fn fail(&self, section: &str, key: &str, msg: String) -> Result<()> {
        let line = self.text.map(|t| locate(t, section, key)).unwrap_or(0);
        let key = if section.is_empty() { key.to_string() } else { format!("{section}.{key}") };
        Err(TrainError::ConfigInvalid { path: self.origin.to_path_buf(), line, key, msg })
    }
}

/// The run name becomes a folder name.
fn check_name(name: &str, at: &Site) -> Result<()> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return at.fail("", "name", format!("{name:?} is not a plain folder name"));
    }
    Ok(())
}

/// 1-based line where `key` is set in table `[section]`, or of its own `[section.key]` table
/// (the section's header when the key is absent, 0 when neither is found).
fn locate(text: &str, section: &str, key: &str) -> usize {
    let own_table = format!("{section}.{key}");
    let mut current = String::new();
    let mut header = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            current = name.trim().to_string();
            if current == own_table {
                return i + 1;
            }
            if current == section {
                header = i + 1;
            }
            continue;
        }
        if current == section && line.split_once('=').is_some_and(|(k, _)| k.trim().trim_matches('"') == key) {
            return i + 1;
        }
    }
    header
}
