//! Validation of a parsed [`TrainConfig`], one check per section, run before any work starts.
//!
//! Errors name the dotted key (`optim.lr`) and, when the TOML text is known, the 1-based line
//! where the key is set (or its table header when the key was left to its default).

use std::path::Path;

use super::{DataConfig, LoopConfig, OptimConfig, ScheduleConfig, TrainConfig};
use crate::error::{Result, TrainError};

impl TrainConfig {
    /// Validates a configuration built in code (errors carry no line).
    pub fn validate(&self) -> Result<()> {
        self.validate_with(None, Path::new("<config>"))
    }

    /// Validates the sections in file order; `text` (the TOML source) gives error lines.
    pub(super) fn validate_with(&self, text: Option<&str>, origin: &Path) -> Result<()> {
        let at = Site { text, origin };
        check_name(&self.name, &at)?;
        check_data(&self.data, &at)?;
        check_model(self, &at)?;
        check_loss(self, &at)?;
        check_optim(&self.optim, &at)?;
        check_schedule(&self.schedule, self.train.epochs, &at)?;
        check_loop(&self.train, &at)
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
        let dotted = if section.is_empty() {
            key.to_string()
        } else {
            format!("{section}.{key}")
        };
        Err(TrainError::ConfigInvalid {
            path: self.origin.to_path_buf(),
            line,
            key: dotted,
            msg,
        })
    }
}

/// `x > 0`, false for NaN.
fn positive(x: f64) -> bool {
    x > 0.0
}

/// The run name becomes a folder name.
fn check_name(name: &str, at: &Site) -> Result<()> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return at.fail("", "name", format!("{name:?} is not a plain folder name"));
    }
    Ok(())
}

/// `[data]`.
fn check_data(d: &DataConfig, at: &Site) -> Result<()> {
    check_source(d, at)?;
    if d.min_images == 0 {
        return at.fail("data", "min_images", "must be at least 1".into());
    }
    if let Some([_, _, w, h]) = d.crop {
        if w == 0 || h == 0 {
            return at.fail("data", "crop", "width and height must be positive".into());
        }
    }
    Ok(())
}

/// `data.source` with the keys it needs: an LFW training protocol, or a folder.
fn check_source(d: &DataConfig, at: &Site) -> Result<()> {
    match d.source.as_str() {
        "lfw" => match (d.protocol.as_str(), d.fold) {
            ("dev", _) => Ok(()),
            ("view2", Some(k)) if k < 10 => Ok(()),
            ("view2", other) => at.fail(
                "data",
                "fold",
                format!("view2 needs a fold in 0..10, got {other:?}"),
            ),
            (p, _) => at.fail(
                "data",
                "protocol",
                format!("{p:?} is not a training protocol (dev or view2)"),
            ),
        },
        "folder" if d.folder.is_none() => at.fail(
            "data",
            "folder",
            "source = \"folder\" needs `folder = \"path\"`".into(),
        ),
        "folder" => Ok(()),
        other => at.fail(
            "data",
            "source",
            format!("{other:?} (expected lfw or folder)"),
        ),
    }
}

/// `[model]`: the backbone crate validates the shape; the key is guessed from its message.
fn check_model(c: &TrainConfig, at: &Site) -> Result<()> {
    let Err(msg) = c.backbone_config() else {
        return Ok(());
    };
    let key = if msg.contains("input_size") {
        "input_size"
    } else if msg.contains("width") {
        "width"
    } else if msg.contains("dropout") {
        "dropout"
    } else if msg.contains("num_features") {
        "num_features"
    } else {
        "backbone"
    };
    at.fail("model", key, msg)
}

/// `[loss]`: the scale, the kind with its margin range, and the gradient mode.
fn check_loss(c: &TrainConfig, at: &Site) -> Result<()> {
    let l = &c.loss;
    if !(l.scale.is_finite() && l.scale > 0.0) {
        return at.fail(
            "loss",
            "scale",
            format!("must be positive, got {}", l.scale),
        );
    }
    match l.kind.as_str() {
        "softmax" | "combined" => {}
        "arcface" | "cosface" | "sphereface" => {
            let m = c.margin_value();
            let ok = match l.kind.as_str() {
                "arcface" => (0.0..std::f64::consts::FRAC_PI_2).contains(&m),
                "cosface" => (0.0..1.0).contains(&m),
                _ => (1.0..=10.0).contains(&m),
            };
            if !ok {
                return at.fail("loss", "m", format!("{m} is out of range for {}", l.kind));
            }
        }
        other => {
            return at.fail(
                "loss",
                "kind",
                format!("{other:?} (expected softmax, arcface, cosface, sphereface or combined)"),
            )
        }
    }
    if !matches!(l.grad_mode.as_str(), "exact" | "straight_through") {
        return at.fail(
            "loss",
            "grad_mode",
            format!("{:?} (expected exact or straight_through)", l.grad_mode),
        );
    }
    Ok(())
}

/// `[optim]`.
fn check_optim(o: &OptimConfig, at: &Site) -> Result<()> {
    if !matches!(o.kind.as_str(), "sgd" | "adamw") {
        return at.fail(
            "optim",
            "kind",
            format!("{:?} (expected sgd or adamw)", o.kind),
        );
    }
    if !(o.lr.is_finite() && o.lr > 0.0) {
        return at.fail(
            "optim",
            "lr",
            format!("must be positive and finite, got {}", o.lr),
        );
    }
    if !(0.0..1.0).contains(&o.momentum) {
        return at.fail(
            "optim",
            "momentum",
            format!("must be in [0, 1), got {}", o.momentum),
        );
    }
    if !(o.weight_decay.is_finite() && o.weight_decay >= 0.0) {
        return at.fail(
            "optim",
            "weight_decay",
            format!("must be >= 0, got {}", o.weight_decay),
        );
    }
    if o.betas.iter().any(|b| !(0.0..1.0).contains(b)) || !positive(o.eps) {
        return at.fail(
            "optim",
            "betas",
            format!(
                "betas must be in [0, 1) and eps > 0, got {:?}, {}",
                o.betas, o.eps
            ),
        );
    }
    Ok(())
}

/// `[schedule]`; the warm-up must end before the last of `epochs`.
fn check_schedule(s: &ScheduleConfig, epochs: usize, at: &Site) -> Result<()> {
    if !matches!(s.kind.as_str(), "poly" | "cosine" | "step" | "constant") {
        return at.fail(
            "schedule",
            "kind",
            format!("{:?} (expected poly, cosine, step or constant)", s.kind),
        );
    }
    if !(s.warmup_epochs >= 0.0 && s.warmup_epochs < epochs as f64) {
        return at.fail(
            "schedule",
            "warmup_epochs",
            format!("must be in [0, epochs), got {}", s.warmup_epochs),
        );
    }
    if !positive(s.power) {
        return at.fail(
            "schedule",
            "power",
            format!("must be positive, got {}", s.power),
        );
    }
    if !(s.gamma > 0.0 && s.gamma <= 1.0) {
        return at.fail(
            "schedule",
            "gamma",
            format!("must be in (0, 1], got {}", s.gamma),
        );
    }
    if s.milestones.windows(2).any(|w| w[0] >= w[1]) {
        return at.fail(
            "schedule",
            "milestones",
            format!("must increase strictly, got {:?}", s.milestones),
        );
    }
    Ok(())
}

/// `[train]`.
fn check_loop(t: &LoopConfig, at: &Site) -> Result<()> {
    if t.epochs == 0 {
        return at.fail("train", "epochs", "must be at least 1".into());
    }
    if t.batch_size < 2 {
        return at.fail(
            "train",
            "batch_size",
            format!("must be at least 2 (batch norm), got {}", t.batch_size),
        );
    }
    if !(t.grad_clip.is_finite() && t.grad_clip >= 0.0) {
        return at.fail(
            "train",
            "grad_clip",
            format!("must be >= 0, got {}", t.grad_clip),
        );
    }
    if !matches!(t.precision.as_str(), "f32" | "bf16") {
        return at.fail(
            "train",
            "precision",
            format!("{:?} (expected f32 or bf16)", t.precision),
        );
    }
    if t.log_every == 0 {
        return at.fail("train", "log_every", "must be at least 1".into());
    }
    if t.keep_checkpoints == 0 {
        return at.fail("train", "keep_checkpoints", "must be at least 1".into());
    }
    if t.eval_batch_size == 0 {
        return at.fail("train", "eval_batch_size", "must be at least 1".into());
    }
    Ok(())
}

/// 1-based line where `key` is set in table `[section]` (the table header when the key is
/// absent, 0 when neither is found).
fn locate(text: &str, section: &str, key: &str) -> usize {
    let mut current = String::new();
    let mut header = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            current = name.trim().to_string();
            if current == section {
                header = i + 1;
            }
            continue;
        }
        if current == section {
            if let Some((k, _)) = line.split_once('=') {
                if k.trim().trim_matches('"') == key {
                    return i + 1;
                }
            }
        }
    }
    header
}
