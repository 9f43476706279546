//! Margins on the target logit: the pure logits-to-logits function of InsightFace's
//! `CombinedMarginLoss` / `ArcFace` / `CosFace` (recognition/arcface_torch/losses.py) and of
//! SphereFace (Liu et al., CVPR 2017), kept apart from the layer that owns the class centers.
//! Input: cosines `cos(theta_j)` (N x C) and labels; output: `s * f(cos)` where only the
//! target column `y` of each row is changed by the margin.

use crate::angle::{acos, as_integer, chebyshev, sin_from_cos};
use crate::error::LossError;
use candle::{DType, Result, Tensor};
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// A margin on the target angle `theta_y`; every other logit stays `s cos(theta_j)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", deny_unknown_fields)]
pub enum Margin {
    /// Normalized softmax ("naive"): `s cos(theta_y)`, no margin.
    #[serde(rename = "softmax")]
    Softmax,
    /// ArcFace (Deng et al. 2019): `s cos(theta_y + m)`, computed without `acos` as
    /// `cos t cos m - sin t sin m`, `sin t = sqrt(clamp(1 - cos^2 t, 0, 1))`. Because
    /// `cos(theta + m)` stops decreasing once `theta + m > pi`, the standard fallback replaces it
    /// by `cos(theta) - sin(pi - m) m` wherever `cos(theta) <= cos(pi - m)`. With `easy_margin`
    /// the margin is applied only where `cos(theta) > 0` (elsewhere the logit is `cos(theta)`).
    #[serde(rename = "arcface")]
    ArcFace {
        /// Additive angular margin in radians, `0 <= m < pi` (InsightFace: 0.5).
        #[serde(default = "defaults::arcface_m")]
        m: f64,
        /// Apply the margin only where `cos(theta_y) > 0`.
        #[serde(default)]
        easy_margin: bool,
    },
    /// CosFace / AM-softmax (Wang et al. 2018): `s (cos(theta_y) - m)`.
    #[serde(rename = "cosface")]
    CosFace {
        /// Additive cosine margin, `m >= 0` (InsightFace: 0.35 with s = 64).
        #[serde(default = "defaults::cosface_m")]
        m: f64,
    },
    /// SphereFace's multiplicative angular margin with its monotonic extension
    /// `psi(theta) = (-1)^k cos(m theta) - 2k`, `k = floor(m theta / pi)`, on normalized
    /// features (so `s psi(theta_y)`; the original's feature norm is replaced by `s`, and its
    /// lambda annealing is left to the caller). Integer `m` uses Chebyshev polynomials
    /// (`acos`-free, exact); real `m` uses the crate's differentiable `acos`.
    #[serde(rename = "sphereface")]
    SphereFace {
        /// Angle multiplier, `m >= 1` (SphereFace: 4).
        #[serde(default = "defaults::sphereface_m")]
        m: f64,
    },
    /// InsightFace's combined margin `s (cos(m1 theta_y + m2) - m3)`: (1, 0, 0) is softmax,
    /// (1, m, 0) ArcFace *without* its fallback, (1, 0, m) CosFace, (m, 0, 0) SphereFace
    /// without `psi`. The formula is applied literally, as in InsightFace's MXNet version.
    #[serde(rename = "combined")]
    Combined {
        /// Angle multiplier (integer: Chebyshev, exact; real: differentiable `acos`).
        #[serde(default = "defaults::combined_m1")]
        m1: f64,
        /// Additive angular margin.
        #[serde(default = "defaults::combined_m2")]
        m2: f64,
        /// Additive cosine margin.
        #[serde(default = "defaults::combined_m3")]
        m3: f64,
    },
}

/// How gradients flow through the margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GradMode {
    /// The true derivative of the margin logits.
    #[default]
    Exact,
    /// InsightFace's current `arcface_torch` behaviour (margin computed under `no_grad`):
    /// forward value with the margin, gradient of the plain cosine logits,
    /// `logits = s (cos + (margin(cos) - cos).detach())`.
    StraightThrough,
}

/// The usual setting of each margin family, the one place these defaults are written: serde
/// fills missing parameters from here and [`Margin::from_name`] builds from here.
mod defaults {
    pub(super) fn arcface_m() -> f64 {
        0.5
    }
    pub(super) fn cosface_m() -> f64 {
        0.35
    }
    pub(super) fn sphereface_m() -> f64 {
        4.0
    }
    pub(super) fn combined_m1() -> f64 {
        1.0
    }
    pub(super) fn combined_m2() -> f64 {
        0.3
    }
    pub(super) fn combined_m3() -> f64 {
        0.2
    }
}

impl Default for Margin {
    fn default() -> Self {
        Margin::ArcFace { m: defaults::arcface_m(), easy_margin: false }
    }
}

impl Margin {
    /// The usual setting of a margin family by name: `softmax`, `arcface` (m = 0.5),
    /// `cosface` (m = 0.35), `sphereface` (m = 4), `combined` (1.0, 0.3, 0.2).
    pub fn from_name(name: &str) -> Option<Margin> {
        use defaults::*;
        Some(match name {
            "softmax" => Margin::Softmax,
            "arcface" => Margin::default(),
            "cosface" => Margin::CosFace { m: cosface_m() },
            "sphereface" => Margin::SphereFace { m: sphereface_m() },
            "combined" => Margin::Combined { m1: combined_m1(), m2: combined_m2(), m3: combined_m3() },
            _ => return None,
        })
    }

    /// The same family with its single margin parameter set to `m` (ArcFace's angle, CosFace's
    /// cosine, SphereFace's multiplier); `None` for the families without one (softmax, and the
    /// combined margin's three parameters).
    pub fn with_m(self, m: f64) -> Option<Margin> {
        Some(match self {
            Margin::ArcFace { easy_margin, .. } => Margin::ArcFace { m, easy_margin },
            Margin::CosFace { .. } => Margin::CosFace { m },
            Margin::SphereFace { .. } => Margin::SphereFace { m },
            Margin::Softmax | Margin::Combined { .. } => return None,
        })
    }

    /// The family name accepted by [`Margin::from_name`].
    pub fn name(&self) -> &'static str {
        match self {
            Margin::Softmax => "softmax",
            Margin::ArcFace { .. } => "arcface",
            Margin::CosFace { .. } => "cosface",
            Margin::SphereFace { .. } => "sphereface",
            Margin::Combined { .. } => "combined",
        }
    }

    /// Checks the parameters against the ranges documented on each variant.
    pub fn validate(&self) -> std::result::Result<(), LossError> {
        let bad = |msg: String| Err(LossError::InvalidConfig(msg));
        match *self {
            Margin::Softmax => Ok(()),
            Margin::ArcFace { m, .. } if !(0.0..PI).contains(&m) => {
                bad(format!("arcface margin m = {m} must be in [0, pi)"))
            }
            Margin::CosFace { m } if !(m.is_finite() && m >= 0.0) => {
                bad(format!("cosface margin m = {m} must be finite and >= 0"))
            }
            Margin::SphereFace { m } if !(m.is_finite() && m >= 1.0) => {
                bad(format!("sphereface multiplier m = {m} must be finite and >= 1"))
            }
            Margin::Combined { m1, m2, m3 }
                if !(m1.is_finite() && m1 > 0.0 && m2.is_finite() && m3.is_finite()) =>
            {
                bad(format!("combined margin ({m1}, {m2}, {m3}): m1 must be > 0, all finite"))
            }
            _ => Ok(()),
        }
    }

    /// The margin function on target cosines (any shape), without the scale.
    pub fn target_logit(&self, cos: &Tensor) -> Result<Tensor> {
        match *self {
            Margin::Softmax => Ok(cos.clone()),
            Margin::ArcFace { m, easy_margin } => {
                let phi = (cos.affine(m.cos(), 0.0)? - sin_from_cos(cos)?.affine(m.sin(), 0.0)?)?;
                if easy_margin {
                    cos.gt(0.0)?.where_cond(&phi, cos)
                } else {
                    let (th, mm) = ((PI - m).cos(), (PI - m).sin() * m);
                    cos.gt(th)?.where_cond(&phi, &cos.affine(1.0, -mm)?)
                }
            }
            Margin::CosFace { m } => cos.affine(1.0, -m),
            Margin::SphereFace { m } => sphere_psi(cos, m),
            Margin::Combined { m1, m2, m3 } => {
                let c = match as_integer(m1) {
                    Some(k) => {
                        let (t, u) = chebyshev(cos, k)?;
                        let sin_m1 = sin_from_cos(cos)?.mul(&u)?;
                        (t.affine(m2.cos(), 0.0)? - sin_m1.affine(m2.sin(), 0.0)?)?
                    }
                    None => acos(cos)?.affine(m1, m2)?.cos()?,
                };
                c.affine(1.0, -m3)
            }
        }
    }
}

/// SphereFace's `psi(theta) = (-1)^k cos(m theta) - 2k`, continuous and decreasing on [0, pi].
fn sphere_psi(cos: &Tensor, m: f64) -> Result<Tensor> {
    let (cos_m, k) = match as_integer(m) {
        Some(mi) => {
            // theta >= j pi / m  <=>  cos <= cos(j pi / m), so k counts the thresholds passed.
            let mut k = cos.zeros_like()?;
            for j in 1..mi {
                let hit = cos.le((j as f64 * PI / m).cos())?.to_dtype(cos.dtype())?;
                k = (k + hit)?;
            }
            (chebyshev(cos, mi)?.0, k)
        }
        None => {
            let theta = acos(cos)?;
            let k = theta.affine(m / PI, 0.0)?.floor()?.detach();
            (theta.affine(m, 0.0)?.cos()?, k)
        }
    };
    let parity = (&k - k.affine(0.5, 0.0)?.floor()?.affine(2.0, 0.0)?)?;
    let sign = parity.affine(-2.0, 1.0)?;
    sign.mul(&cos_m)? - k.affine(2.0, 0.0)?
}

/// Checks that `labels` is a u32 vector of `n` valid class indices below `num_classes`.
pub fn check_labels(labels: &Tensor, n: usize, num_classes: usize) -> std::result::Result<(), LossError> {
    if labels.dtype() != DType::U32 {
        return Err(LossError::LabelDType(labels.dtype()));
    }
    if labels.dims() != [n] {
        return Err(LossError::Shape {
            what: "labels",
            expected: format!("[{n}] (one per embedding)"),
            got: labels.dims().to_vec(),
        });
    }
    let values: Vec<u32> = labels.to_vec1().map_err(|e| LossError::InvalidConfig(e.to_string()))?;
    match values.iter().enumerate().find(|(_, &l)| l as usize >= num_classes) {
        Some((row, &label)) => Err(LossError::LabelOutOfRange { row, label, num_classes }),
        None => Ok(()),
    }
}

/// Margin logits `s f(cos)` from cosines `cos` (N x C float) and `labels` (u32, N): the pure
/// logits-to-logits function. Only each row's target column differs from `s cos`.
pub fn apply_margin(
    cos: &Tensor,
    labels: &Tensor,
    margin: &Margin,
    mode: GradMode,
    scale: f64,
) -> Result<Tensor> {
    margin.validate()?;
    if !(scale.is_finite() && scale > 0.0) {
        Err(LossError::InvalidConfig(format!("scale s = {scale} must be finite and > 0")))?;
    }
    let (n, c) = match cos.dims() {
        &[n, c] if n > 0 && c > 0 => (n, c),
        &[0, _] => Err(LossError::EmptyBatch)?,
        dims => Err(LossError::Shape { what: "cosines", expected: "[N, C]".into(), got: dims.to_vec() })?,
    };
    check_labels(labels, n, c)?;
    if *margin == Margin::Softmax {
        return cos.affine(scale, 0.0);
    }
    let index = labels.unsqueeze(1)?;
    let target = cos.contiguous()?.gather(&index, 1)?;
    let with_margin = margin.target_logit(&target)?;
    let new_target = match mode {
        GradMode::Exact => with_margin,
        GradMode::StraightThrough => (&target + (with_margin - &target)?.detach())?,
    };
    let classes = Tensor::arange(0u32, c as u32, cos.device())?.unsqueeze(0)?;
    let is_target = index.broadcast_eq(&classes)?;
    is_target.where_cond(&new_target.broadcast_as((n, c))?, cos)?.affine(scale, 0.0)
}
