//! The training configuration: one TOML file, typed, with defaults, validated before any work
//! starts; errors name the file and the line of the offending key.
//!
//! Presets live in `configs/<name>.toml` (InsightFace names its configs
//! `<dataset>_<backbone>`; ours name the recipe). Every field is documented below; a
//! resolved copy (all defaults filled in) is written to `runs/<name>/config.toml`.
//!
//! The sections are defined here; `load` reads files and presets, `validate` checks each
//! section, `resolve` turns sections into the other crates' types, `defaults` holds the serde
//! defaults.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use defaults::*;

mod defaults;
mod load;
mod resolve;
#[cfg(test)]
mod tests;
mod validate;

pub use load::presets_dir;

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
