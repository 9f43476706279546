//! The normalized fully connected head (InsightFace's `PartialFC` with sample rate 1, or the
//! `NormedLinear` of the ArcFace paper): it owns the class centers `weight` (C x d, or C K x d
//! with K sub-centers), L2-normalises embeddings and centers, takes `cos = e_n W_n^T` (a class's
//! cosine being the largest of its K), applies a [`Margin`] and the scale, and returns the
//! cross-entropy, optionally label-smoothed. Normalisation, margin and log-sum-exp run in f32
//! (f64 for f64 inputs); bf16/f16 embeddings only make the matrix product run in half
//! precision, which is where the time goes.

use crate::error::LossError;
use crate::init::{seeded_normal, CENTER_STD};
use crate::margin::{apply_margin, check_labels, GradMode, Margin};
use candle::{DType, Device, Result, Tensor};
use candle_nn::{Init, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

/// Epsilon under the L2 norms, as `torch.nn.functional.normalize`: `x / max(|x|, EPS)`.
pub const NORM_EPS: f64 = 1e-12;

/// InsightFace's logit scale s, the default of every head.
pub const DEFAULT_SCALE: f64 = 64.0;

fn default_scale() -> f64 {
    DEFAULT_SCALE
}

fn one() -> usize {
    1
}

/// Configuration of a [`MarginHead`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadConfig {
    /// Number of training identities C.
    pub num_classes: usize,
    /// Embedding size d (512 for InsightFace backbones).
    pub embedding_size: usize,
    /// Logit scale s (InsightFace: 64).
    #[serde(default = "default_scale")]
    pub scale: f64,
    /// Margin on the target logit.
    #[serde(default)]
    pub margin: Margin,
    /// Gradient through the margin.
    #[serde(default)]
    pub grad_mode: GradMode,
    /// Centers per class K (sub-center ArcFace, Deng et al., ECCV 2020): weight row `c K + k`
    /// is center k of class c, and the class's cosine is the largest of its K, so a noisy or
    /// unusual image can settle near a center of its own. 1 is the plain head.
    #[serde(default = "one")]
    pub sub_centers: usize,
    /// Label smoothing eps of the cross-entropy, as `torch.nn.functional.cross_entropy`'s
    /// `label_smoothing`: the target puts 1 - eps + eps / C on the label and eps / C elsewhere.
    #[serde(default)]
    pub label_smoothing: f64,
}

impl HeadConfig {
    /// ArcFace (m = 0.5, s = 64, exact gradient) for `num_classes` identities and 512-d embeddings.
    pub fn arcface(num_classes: usize) -> Self {
        HeadConfig {
            num_classes,
            embedding_size: 512,
            scale: DEFAULT_SCALE,
            margin: Margin::default(),
            grad_mode: GradMode::Exact,
            sub_centers: 1,
            label_smoothing: 0.0,
        }
    }

    /// Rows of the weight: C K.
    pub fn num_centers(&self) -> usize {
        self.num_classes * self.sub_centers
    }

    /// Checks sizes, scale, sub-centers, label smoothing and margin.
    pub fn validate(&self) -> std::result::Result<(), LossError> {
        if self.num_classes == 0 || self.embedding_size == 0 || self.sub_centers == 0 {
            return Err(LossError::InvalidConfig(format!(
                "num_classes ({}), embedding_size ({}) and sub_centers ({}) must be positive",
                self.num_classes, self.embedding_size, self.sub_centers
            )));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(LossError::InvalidConfig(format!(
                "label_smoothing = {} must be in [0, 1)",
                self.label_smoothing
            )));
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(LossError::InvalidConfig(format!("scale s = {} must be finite and > 0", self.scale)));
        }
        self.margin.validate()
    }
}

/// What [`MarginHead::forward`] returns.
#[derive(Debug, Clone)]
pub struct HeadOutput {
    /// Mean cross-entropy over the batch, a scalar (f32; f64 for f64 embeddings).
    pub loss: Tensor,
    /// Scaled margin logits `s f(cos)`, N x C (f32; f64 for f64 embeddings).
    pub logits: Tensor,
    /// Number of rows whose largest *margin-free* cosine is the label: a u32 scalar.
    pub correct: Tensor,
}

/// Class centers plus margin: embeddings and labels in, loss out.
#[derive(Debug, Clone)]
pub struct MarginHead {
    weight: Tensor,
    config: HeadConfig,
}

fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x.sqr()?.sum_keepdim(1)?.sqrt()?.maximum(NORM_EPS)?;
    x.broadcast_div(&norm)
}

impl MarginHead {
    /// Fetches (or creates, drawing from candle's unseeded `normal(0, 0.01)`) the centers
    /// `weight` (C K x d) from `vb`.
    pub fn new(config: &HeadConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let init = Init::Randn { mean: 0.0, stdev: CENTER_STD };
        let weight = vb.get_with_hints((config.num_centers(), config.embedding_size), "weight", init)?;
        Self::from_weight(config, weight)
    }

    /// Creates the centers `<prefix>.weight` (or `weight` for an empty prefix) in `varmap`
    /// with a reproducible `normal(0, 0.01)` draw from `seed`, replacing any existing value.
    pub fn init_varmap(
        config: &HeadConfig,
        varmap: &VarMap,
        prefix: &str,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        config.validate()?;
        let shape = (config.num_centers(), config.embedding_size);
        let name = if prefix.is_empty() { "weight".to_string() } else { format!("{prefix}.weight") };
        let weight = varmap.get(shape, &name, Init::Const(0.0), dtype, device)?;
        let value = seeded_normal(shape, 0.0, CENTER_STD, seed, dtype, device)?;
        varmap.clone().set_one(&name, &value)?;
        Self::from_weight(config, weight)
    }

    /// Wraps an existing centers tensor (C K x d); gradients flow to it if it is a `Var`.
    pub fn from_weight(config: &HeadConfig, weight: Tensor) -> Result<Self> {
        config.validate()?;
        let want = [config.num_centers(), config.embedding_size];
        if weight.dims() != want {
            Err(LossError::Shape { what: "weight", expected: format!("{want:?}"), got: weight.dims().to_vec() })?;
        }
        Ok(MarginHead { weight, config: config.clone() })
    }

    /// The class centers, C K x d.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The configuration.
    pub fn config(&self) -> &HeadConfig {
        &self.config
    }

    /// Checks a batch: float embeddings N x d with N > 0, u32 labels N within `[0, C)`.
    pub fn check(&self, emb: &Tensor, labels: &Tensor) -> std::result::Result<(), LossError> {
        let d = self.config.embedding_size;
        let n = match emb.dims() {
            &[0, _] => return Err(LossError::EmptyBatch),
            &[n, dd] if dd == d && emb.dtype().is_float() => n,
            dims => {
                return Err(LossError::Shape {
                    what: "embeddings",
                    expected: format!("[N, {d}] float (got {:?})", emb.dtype()),
                    got: dims.to_vec(),
                })
            }
        };
        check_labels(labels, n, self.config.num_classes)
    }

    /// Margin-free cosines `cos(theta_j)` clamped to [-1, 1], N x C in f32 (f64 for f64 input);
    /// with sub-centers, each class's largest.
    pub fn cosine(&self, emb: &Tensor) -> Result<Tensor> {
        let work = if emb.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
        let e = l2_normalize(&emb.to_dtype(work)?)?;
        let w = l2_normalize(&self.weight.to_dtype(work)?)?;
        let cos = match emb.dtype() {
            half @ (DType::BF16 | DType::F16) => {
                e.to_dtype(half)?.matmul(&w.to_dtype(half)?.t()?)?.to_dtype(work)?
            }
            _ => e.matmul(&w.t()?)?,
        };
        let k = self.config.sub_centers;
        let cos = if k > 1 {
            let n = cos.dim(0)?;
            cos.reshape((n, self.config.num_classes, k))?.max(2)?
        } else {
            cos
        };
        cos.clamp(-1.0, 1.0)
    }

    /// Loss, margin logits and top-1 hits for embeddings `emb` (N x d) and u32 `labels` (N).
    pub fn forward(&self, emb: &Tensor, labels: &Tensor) -> Result<HeadOutput> {
        self.check(emb, labels)?;
        let cos = self.cosine(emb)?;
        let c = &self.config;
        let logits = apply_margin(&cos, labels, &c.margin, c.grad_mode, c.scale)?;
        let loss = cross_entropy(&logits, labels, c.label_smoothing)?;
        let correct = cos.argmax(1)?.eq(labels)?.to_dtype(DType::U32)?.sum_all()?;
        Ok(HeadOutput { loss, logits, correct })
    }
}

/// Mean cross-entropy of `logits` (N x C) against `labels`, label-smoothed by `eps` as torch
/// does: `(1 - eps) (-log p_y) + eps mean_j (-log p_j)` per row.
fn cross_entropy(logits: &Tensor, labels: &Tensor, eps: f64) -> Result<Tensor> {
    if eps == 0.0 {
        return candle_nn::loss::cross_entropy(logits, labels);
    }
    let log_p = candle_nn::ops::log_softmax(logits, 1)?;
    let nll = log_p.gather(&labels.unsqueeze(1)?, 1)?.neg()?.mean_all()?;
    let uniform = log_p.mean(1)?.neg()?.mean_all()?;
    (nll * (1.0 - eps))? + (uniform * eps)?
}
