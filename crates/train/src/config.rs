//! The training configuration: one TOML file, typed, with defaults, validated before any work
//! starts; errors name the file and the line of the offending key.
//!
//! Presets live in `configs/<name>.toml` (InsightFace names its configs
//! `<dataset>_<backbone>`; ours name the recipe). Every field is documented below; a
//! resolved copy (all defaults filled in) is written to `runs/<name>/config.toml`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::optim::OptimizerConfig;
use crate::schedule::Decay;

/// A complete training recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Run name: the run folder is `runs/<name>` unless the caller says otherwise.
    pub name: String,
    /// Seed of the weight initialization, the data order and the augmentation.
    #[serde(default = "d_seed")]
    pub seed: u64,
    /// Where the images come from.
    pub data: DataConfig,
    /// The backbone.
    pub model: ModelConfig,
    /// The margin head.
    pub loss: LossConfig,
    /// The optimizer.
    pub optim: OptimConfig,
    /// The learning-rate schedule.
    #[serde(default)]
    pub schedule: ScheduleConfig,
    /// Loop length, batching, precision, logging and checkpoints.
    pub train: LoopConfig,
}

/// Training data and preprocessing (`[data]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// `lfw` (an LFW protocol split) or `folder` (`<identity>/<image>` folders, no validation).
    #[serde(default = "d_source")]
    pub source: String,
    /// Data directory: LFW is read from `<dir>/lfw`, caches go to `<dir>/cache`.
    #[serde(default = "d_data_dir")]
    pub dir: PathBuf,
    /// LFW directory (holding `lfw-deepfunneled/` and the protocol files); default `<dir>/lfw`.
    #[serde(default)]
    pub lfw_dir: Option<PathBuf>,
    /// Preprocessed-image cache directory; default `<dir>/cache`.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// Root of the identity folders when `source = "folder"`.
    #[serde(default)]
    pub folder: Option<PathBuf>,
    /// LFW protocol to train under: `dev` or `view2` (`pairs` has no training set).
    #[serde(default = "d_protocol")]
    pub protocol: String,
    /// Held-out fold (0..10) for `view2`.
    #[serde(default)]
    pub fold: Option<usize>,
    /// Drop identities with fewer images than this (1 keeps everyone).
    #[serde(default = "d_one")]
    pub min_images: usize,
    /// Crop box `[x, y, width, height]` in the source image; absent: the data crate's default.
    #[serde(default)]
    pub crop: Option<[u32; 4]>,
    /// Random horizontal flip during training.
    #[serde(default = "d_true")]
    pub flip: bool,
    /// Batches decoded ahead of the training step.
    #[serde(default = "d_prefetch")]
    pub prefetch: usize,
}

/// The backbone (`[model]`): an InsightFace preset with optional overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Preset: `r18`, `r34`, `r50` or `r100`.
    pub backbone: String,
    /// Stem width (64 in the presets); stages use width * [1, 2, 4, 8].
    #[serde(default = "d_width")]
    pub width: usize,
    /// Input side in pixels, a multiple of 16 (112 in the presets).
    #[serde(default = "d_input")]
    pub input_size: usize,
    /// Embedding size (512 in the presets).
    #[serde(default = "d_features")]
    pub num_features: usize,
    /// Dropout before the FC layer.
    #[serde(default)]
    pub dropout: f32,
}

/// The classification head (`[loss]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossConfig {
    /// `softmax` (normalized, no margin), `arcface`, `cosface`, `sphereface` or `combined`.
    pub kind: String,
    /// Logit scale s.
    #[serde(default = "d_scale")]
    pub scale: f64,
    /// Margin m of arcface (additive angle), cosface (subtracted cosine) or sphereface
    /// (angle multiplier); defaults 0.5, 0.35 and 1.7.
    #[serde(default)]
    pub m: Option<f64>,
    /// Combined margin cos(m1*theta + m2) - m3: m1.
    #[serde(default = "d_m1")]
    pub m1: f64,
    /// Combined margin: m2 (radians).
    #[serde(default = "d_m2")]
    pub m2: f64,
    /// Combined margin: m3.
    #[serde(default)]
    pub m3: f64,
    /// ArcFace's easy margin (apply the margin only where cos(theta) > 0).
    #[serde(default)]
    pub easy_margin: bool,
    /// Gradient through the margin: `exact` or `straight_through`.
    #[serde(default = "d_grad_mode")]
    pub grad_mode: String,
}

/// The optimizer (`[optim]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    /// `sgd` or `adamw`.
    #[serde(default = "d_sgd")]
    pub kind: String,
    /// Peak learning rate (after warm-up).
    pub lr: f64,
    /// SGD momentum.
    #[serde(default = "d_momentum")]
    pub momentum: f64,
    /// Weight decay: L2 added to the gradient (SGD) or decoupled (AdamW).
    #[serde(default = "d_wd")]
    pub weight_decay: f64,
    /// SGD Nesterov momentum.
    #[serde(default)]
    pub nesterov: bool,
    /// AdamW betas.
    #[serde(default = "d_betas")]
    pub betas: [f64; 2],
    /// AdamW epsilon.
    #[serde(default = "d_eps")]
    pub eps: f64,
}

/// The learning-rate schedule (`[schedule]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// `poly`, `cosine`, `step` or `constant`.
    #[serde(default = "d_poly")]
    pub kind: String,
    /// Linear warm-up length in epochs (fractions allowed; counted in steps).
    #[serde(default)]
    pub warmup_epochs: f64,
    /// Poly exponent (InsightFace: 2).
    #[serde(default = "d_power")]
    pub power: f64,
    /// Cosine floor.
    #[serde(default)]
    pub min_lr: f64,
    /// Step decay: epochs at which the rate is multiplied by `gamma`.
    #[serde(default)]
    pub milestones: Vec<usize>,
    /// Step decay factor.
    #[serde(default = "d_gamma")]
    pub gamma: f64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            kind: d_poly(),
            warmup_epochs: 0.0,
            power: d_power(),
            min_lr: 0.0,
            milestones: vec![],
            gamma: d_gamma(),
        }
    }
}

/// The loop (`[train]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoopConfig {
    /// Number of passes over the training set.
    pub epochs: usize,
    /// Images per optimizer step.
    pub batch_size: usize,
    /// Stop after this many steps in total (for smoke tests; 0 = no limit).
    #[serde(default)]
    pub max_steps: u64,
    /// Clip the global gradient L2 norm to this value (0 = no clipping; InsightFace uses 5).
    #[serde(default)]
    pub grad_clip: f64,
    /// `f32`, or `bf16` (forward in bf16 with f32 master weights).
    #[serde(default = "d_precision")]
    pub precision: String,
    /// Log a train line every this many steps.
    #[serde(default = "d_log_every")]
    pub log_every: u64,
    /// Write a checkpoint every this many steps (0 = only at epoch ends and at the end).
    #[serde(default)]
    pub checkpoint_every: u64,
    /// Checkpoints kept (older ones are deleted).
    #[serde(default = "d_keep")]
    pub keep_checkpoints: usize,
    /// Validate on the protocol's test pairs after each epoch.
    #[serde(default = "d_true")]
    pub validate: bool,
    /// Run the full evaluation (eval/ outputs) after training.
    #[serde(default = "d_true")]
    pub eval_at_end: bool,
    /// Batch size of validation/evaluation embedding passes.
    #[serde(default = "d_eval_batch")]
    pub eval_batch_size: usize,
}

fn d_seed() -> u64 {
    42
}
fn d_source() -> String {
    "lfw".into()
}
fn d_data_dir() -> PathBuf {
    PathBuf::from("data")
}
fn d_protocol() -> String {
    "dev".into()
}
fn d_one() -> usize {
    1
}
fn d_true() -> bool {
    true
}
fn d_prefetch() -> usize {
    2
}
fn d_width() -> usize {
    64
}
fn d_input() -> usize {
    112
}
fn d_features() -> usize {
    512
}
fn d_scale() -> f64 {
    64.0
}
fn d_m1() -> f64 {
    1.0
}
fn d_m2() -> f64 {
    0.5
}
fn d_grad_mode() -> String {
    "exact".into()
}
fn d_sgd() -> String {
    "sgd".into()
}
fn d_momentum() -> f64 {
    0.9
}
fn d_wd() -> f64 {
    5e-4
}
fn d_betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn d_eps() -> f64 {
    1e-8
}
fn d_poly() -> String {
    "poly".into()
}
fn d_power() -> f64 {
    2.0
}
fn d_gamma() -> f64 {
    0.1
}
fn d_precision() -> String {
    "f32".into()
}
fn d_log_every() -> u64 {
    10
}
fn d_keep() -> usize {
    3
}
fn d_eval_batch() -> usize {
    64
}

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

    /// Validates a configuration built in code (errors carry no line).
    pub fn validate(&self) -> Result<()> {
        self.validate_with(None, Path::new("<config>"))
    }

    fn validate_with(&self, text: Option<&str>, origin: &Path) -> Result<()> {
        let fail = |section: &str, key: &str, msg: String| {
            let line = text.map(|t| locate(t, section, key)).unwrap_or(0);
            let dotted = if section.is_empty() {
                key.to_string()
            } else {
                format!("{section}.{key}")
            };
            Err(TrainError::ConfigInvalid {
                path: origin.to_path_buf(),
                line,
                key: dotted,
                msg,
            })
        };
        if self.name.is_empty() || self.name.contains(['/', '\\']) || self.name.starts_with('.') {
            return fail(
                "",
                "name",
                format!("{:?} is not a plain folder name", self.name),
            );
        }
        let d = &self.data;
        match d.source.as_str() {
            "lfw" => match (d.protocol.as_str(), d.fold) {
                ("dev", _) => {}
                ("view2", Some(k)) if k < 10 => {}
                ("view2", other) => {
                    return fail(
                        "data",
                        "fold",
                        format!("view2 needs a fold in 0..10, got {other:?}"),
                    )
                }
                (p, _) => {
                    return fail(
                        "data",
                        "protocol",
                        format!("{p:?} is not a training protocol (dev or view2)"),
                    )
                }
            },
            "folder" if d.folder.is_none() => {
                return fail(
                    "data",
                    "folder",
                    "source = \"folder\" needs `folder = \"path\"`".into(),
                )
            }
            "folder" => {}
            other => {
                return fail(
                    "data",
                    "source",
                    format!("{other:?} (expected lfw or folder)"),
                )
            }
        }
        if d.min_images == 0 {
            return fail("data", "min_images", "must be at least 1".into());
        }
        if let Some([_, _, w, h]) = d.crop {
            if w == 0 || h == 0 {
                return fail("data", "crop", "width and height must be positive".into());
            }
        }
        if let Err(msg) = self.backbone_config() {
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
            return fail("model", key, msg);
        }
        let l = &self.loss;
        if !(l.scale.is_finite() && l.scale > 0.0) {
            return fail(
                "loss",
                "scale",
                format!("must be positive, got {}", l.scale),
            );
        }
        match l.kind.as_str() {
            "softmax" | "combined" => {}
            "arcface" | "cosface" | "sphereface" => {
                let m = self.margin_value();
                let ok = match l.kind.as_str() {
                    "arcface" => (0.0..std::f64::consts::FRAC_PI_2).contains(&m),
                    "cosface" => (0.0..1.0).contains(&m),
                    _ => m >= 1.0 && m <= 10.0,
                };
                if !ok {
                    return fail("loss", "m", format!("{m} is out of range for {}", l.kind));
                }
            }
            other => {
                return fail(
                    "loss",
                    "kind",
                    format!(
                        "{other:?} (expected softmax, arcface, cosface, sphereface or combined)"
                    ),
                )
            }
        }
        if !matches!(l.grad_mode.as_str(), "exact" | "straight_through") {
            return fail(
                "loss",
                "grad_mode",
                format!("{:?} (expected exact or straight_through)", l.grad_mode),
            );
        }
        let o = &self.optim;
        if !matches!(o.kind.as_str(), "sgd" | "adamw") {
            return fail(
                "optim",
                "kind",
                format!("{:?} (expected sgd or adamw)", o.kind),
            );
        }
        if !(o.lr.is_finite() && o.lr > 0.0) {
            return fail(
                "optim",
                "lr",
                format!("must be positive and finite, got {}", o.lr),
            );
        }
        if !(0.0..1.0).contains(&o.momentum) {
            return fail(
                "optim",
                "momentum",
                format!("must be in [0, 1), got {}", o.momentum),
            );
        }
        if !(o.weight_decay.is_finite() && o.weight_decay >= 0.0) {
            return fail(
                "optim",
                "weight_decay",
                format!("must be >= 0, got {}", o.weight_decay),
            );
        }
        if o.betas.iter().any(|b| !(0.0..1.0).contains(b)) || !(o.eps > 0.0) {
            return fail(
                "optim",
                "betas",
                format!(
                    "betas must be in [0, 1) and eps > 0, got {:?}, {}",
                    o.betas, o.eps
                ),
            );
        }
        let s = &self.schedule;
        if !matches!(s.kind.as_str(), "poly" | "cosine" | "step" | "constant") {
            return fail(
                "schedule",
                "kind",
                format!("{:?} (expected poly, cosine, step or constant)", s.kind),
            );
        }
        if !(s.warmup_epochs >= 0.0 && s.warmup_epochs < self.train.epochs as f64) {
            return fail(
                "schedule",
                "warmup_epochs",
                format!("must be in [0, epochs), got {}", s.warmup_epochs),
            );
        }
        if !(s.power > 0.0) {
            return fail(
                "schedule",
                "power",
                format!("must be positive, got {}", s.power),
            );
        }
        if !(s.gamma > 0.0 && s.gamma <= 1.0) {
            return fail(
                "schedule",
                "gamma",
                format!("must be in (0, 1], got {}", s.gamma),
            );
        }
        if s.milestones.windows(2).any(|w| w[0] >= w[1]) {
            return fail(
                "schedule",
                "milestones",
                format!("must increase strictly, got {:?}", s.milestones),
            );
        }
        let t = &self.train;
        if t.epochs == 0 {
            return fail("train", "epochs", "must be at least 1".into());
        }
        if t.batch_size < 2 {
            return fail(
                "train",
                "batch_size",
                format!("must be at least 2 (batch norm), got {}", t.batch_size),
            );
        }
        if !(t.grad_clip.is_finite() && t.grad_clip >= 0.0) {
            return fail(
                "train",
                "grad_clip",
                format!("must be >= 0, got {}", t.grad_clip),
            );
        }
        if !matches!(t.precision.as_str(), "f32" | "bf16") {
            return fail(
                "train",
                "precision",
                format!("{:?} (expected f32 or bf16)", t.precision),
            );
        }
        if t.log_every == 0 {
            return fail("train", "log_every", "must be at least 1".into());
        }
        if t.keep_checkpoints == 0 {
            return fail("train", "keep_checkpoints", "must be at least 1".into());
        }
        if t.eval_batch_size == 0 {
            return fail("train", "eval_batch_size", "must be at least 1".into());
        }
        Ok(())
    }

    /// The backbone shape, or why it is invalid.
    pub fn backbone_config(&self) -> std::result::Result<arcface_backbone::Config, String> {
        let m = &self.model;
        let base = arcface_backbone::Config::from_name(&m.backbone).ok_or_else(|| {
            format!(
                "unknown backbone {:?} (expected r18, r34, r50 or r100)",
                m.backbone
            )
        })?;
        let cfg = arcface_backbone::Config {
            width: m.width,
            input_size: m.input_size,
            num_features: m.num_features,
            dropout: m.dropout,
            ..base
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The margin parameter of single-margin losses, with its default.
    pub fn margin_value(&self) -> f64 {
        self.loss.m.unwrap_or(match self.loss.kind.as_str() {
            "cosface" => 0.35,
            "sphereface" => 1.7,
            _ => 0.5,
        })
    }

    /// The optimizer settings.
    pub fn optimizer_config(&self) -> OptimizerConfig {
        let o = &self.optim;
        if o.kind == "adamw" {
            OptimizerConfig::Adamw {
                beta1: o.betas[0],
                beta2: o.betas[1],
                eps: o.eps,
                weight_decay: o.weight_decay,
            }
        } else {
            OptimizerConfig::Sgd {
                momentum: o.momentum,
                weight_decay: o.weight_decay,
                nesterov: o.nesterov,
            }
        }
    }

    /// The decay that follows warm-up.
    pub fn decay(&self) -> Decay {
        let s = &self.schedule;
        match s.kind.as_str() {
            "cosine" => Decay::Cosine { min_lr: s.min_lr },
            "step" => Decay::Step {
                milestones: s.milestones.clone(),
                gamma: s.gamma,
            },
            "constant" => Decay::Constant,
            _ => Decay::Poly { power: s.power },
        }
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

/// 1-based line where `key` is set in table `[section]` (the table header when the key is
/// absent, 0 when neither is found).
pub(crate) fn locate(text: &str, section: &str, key: &str) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "t"
[data]
protocol = "dev"
[model]
backbone = "r18"
width = 8
input_size = 32
[loss]
kind = "arcface"
[optim]
lr = 0.1
[train]
epochs = 2
batch_size = 8
"#;

    #[test]
    fn defaults_fill_in() {
        let c = TrainConfig::from_toml_str(GOOD, Path::new("g.toml")).unwrap();
        assert_eq!(c.seed, 42);
        assert_eq!(c.schedule.kind, "poly");
        assert_eq!(c.margin_value(), 0.5);
        assert_eq!(c.backbone_config().unwrap().layers, [2, 2, 2, 2]);
        // The resolved form parses back to the same value.
        let again = TrainConfig::from_toml_str(&c.to_toml(), Path::new("r.toml")).unwrap();
        assert_eq!(c, again);
    }

    #[test]
    fn invalid_value_names_file_and_line() {
        let bad = GOOD.replace("lr = 0.1", "lr = -1.0");
        let err = TrainConfig::from_toml_str(&bad, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x.toml:12: invalid `optim.lr`"), "{err}");
        let bad = GOOD.replace("input_size = 32", "input_size = 30");
        let err = TrainConfig::from_toml_str(&bad, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("x.toml:8: invalid `model.input_size`"),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_names_line() {
        let bad = GOOD.replace("epochs = 2", "epochz = 2");
        let err = TrainConfig::from_toml_str(&bad, Path::new("y.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("y.toml:14:"), "{err}");
        assert!(err.contains("epochz"), "{err}");
    }
}
