//! Training-mode batch norm on CPU f32 as three custom ops instead of a dozen candle ops:
//! batch statistics (two passes in f64: mean, then centered squares), the normalize-scale-
//! shift forward, and its backward (per-channel sums, then the input gradient).
//!
//! With `M = N * L` values per channel, `xhat = (x - mean) * inv_std` and `y = w * xhat + b`,
//! the gradients are `dw = sum(dy * xhat)`, `db = sum(dy)` and
//! `dx = w * inv_std / M * (M * dy - sum(dy) - xhat * sum(dy * xhat))` (Ioffe & Szegedy,
//! 2015, section 3), each sum per channel.

use candle::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};

use std::sync::Arc;

use crate::profile::Profiler;
use crate::channelwise::{channel_slice, f32_slice, sum_map, sum_pairs, Blocks};

const OP: &str = "batch-norm";

/// Per-channel batch mean and biased variance.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct BatchStats {
    /// Mean of each channel.
    pub mean: Vec<f64>,
    /// Biased (divide by `M`) variance of each channel.
    pub var: Vec<f64>,
}

/// Training forward of `x` (contiguous CPU f32, `N x C x ...`) with f32 `weight`, `bias` of
/// `C` values: the output, differentiable in all three, and the batch statistics.
pub(super) fn train_forward(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
    profiler: Option<Arc<Profiler>>,
) -> Result<(Tensor, BatchStats)> {
    let x = x.contiguous()?;
    let stats = batch_stats(&x)?;
    let inv_std = stats.var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let op = Normalize {
        mean: stats.mean.clone(),
        inv_std,
        profiler,
    };
    let y = x.apply_op3(&weight.contiguous()?, &bias.contiguous()?, op)?;
    Ok((y, stats))
}

fn batch_stats(x: &Tensor) -> Result<BatchStats> {
    let mut rows = x.apply_op1_no_bwd(&StatsOp)?.to_vec2::<f64>()?.into_iter();
    match (rows.next(), rows.next()) {
        (Some(mean), Some(var)) => Ok(BatchStats { mean, var }),
        _ => candle::bail!("{OP}: the statistics op returned fewer than 2 rows"),
    }
}

/// `x` to its `2 x C` f64 statistics: row 0 the means, row 1 the biased variances.
struct StatsOp;

impl CustomOp1 for StatsOp {
    fn name(&self) -> &'static str {
        "batch-norm-stats"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = Blocks::of(l.dims())?;
        let x = f32_slice(s, l, OP, "input")?;
        let m = g.per_channel() as f64;
        let mean: Vec<f64> = g
            .channel_sums(|b| [sum_map(g.run(x, b), |v| v)])
            .iter()
            .map(|s| s[0] / m)
            .collect();
        // Centering before squaring avoids E[x^2] - E[x]^2's cancellation.
        let sq = g.channel_sums(|b| {
            let mu = mean[g.channel(b)];
            [sum_map(g.run(x, b), |v| (v - mu) * (v - mu))]
        });
        let mut out = mean;
        out.extend(sq.iter().map(|s| s[0] / m));
        Ok((CpuStorage::F64(out), (2, g.c).into()))
    }
}

/// `(x, weight, bias)` to `(x - mean) * inv_std * weight + bias` with the batch statistics
/// it carries; its backward is the batch-statistics gradient.
struct Normalize {
    mean: Vec<f64>,
    inv_std: Vec<f64>,
    profiler: Option<Arc<Profiler>>,
}

impl CustomOp3 for Normalize {
    fn name(&self) -> &'static str {
        "batch-norm-train"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Blocks::of(l1.dims())?;
        let x = f32_slice(s1, l1, OP, "input")?;
        let w = channel_slice(s2, l2, g.c, OP, "weight")?;
        let b = channel_slice(s3, l3, g.c, OP, "bias")?;
        // y = x * scale + shift per channel.
        let scale: Vec<f64> = (0..g.c).map(|c| w[c] as f64 * self.inv_std[c]).collect();
        let shift: Vec<f32> = (0..g.c)
            .map(|c| (b[c] as f64 - self.mean[c] * scale[c]) as f32)
            .collect();
        let scale: Vec<f32> = scale.into_iter().map(|s| s as f32).collect();
        let y = g.map(|blk| {
            let (a, s) = (scale[g.channel(blk)], shift[g.channel(blk)]);
            g.run(x, blk).iter().map(move |&v| v * a + s)
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        crate::profile::timed(self.profiler.as_deref(), "batch-norm backward", x.device(), || {
            let dy = grad.contiguous()?;
            let sums_op = GradSums {
                mean: self.mean.clone(),
                inv_std: self.inv_std.clone(),
            };
            let sums = x.apply_op2_no_bwd(&dy, &sums_op)?;
            let dx = match x.track_op() {
                true => Some(self.grad_input(x, weight, &dy, &sums)?),
                false => None,
            };
            let db = match bias.track_op() {
                true => Some(sums.get(0)?.to_dtype(DType::F32)?.reshape(bias.shape())?),
                false => None,
            };
            let dw = match weight.track_op() {
                true => Some(sums.get(1)?.to_dtype(DType::F32)?.reshape(weight.shape())?),
                false => None,
            };
            Ok((dx, dw, db))
    
        })
    }
}

impl Normalize {
    /// `dx = a * dy + b * x + c` per channel: the batch-norm input gradient expanded so
    /// that the inner loop is one multiply-add chain.
    fn grad_input(
        &self,
        x: &Tensor,
        weight: &Tensor,
        dy: &Tensor,
        sums: &Tensor,
    ) -> Result<Tensor> {
        let w = weight.to_dtype(DType::F64)?.to_vec1::<f64>()?;
        let sums = sums.to_vec2::<f64>()?;
        let (sum_dy, sum_dy_xhat) = (&sums[0], &sums[1]);
        let m = (x.elem_count() / w.len().max(1)) as f64;
        let mut coef = Vec::with_capacity(3 * w.len());
        for c in 0..w.len() {
            let (mu, is) = (self.mean[c], self.inv_std[c]);
            let k = w[c] * is;
            // dx = k * (dy - sum_dy / M - (x - mu) * is * sum_dy_xhat / M).
            let slope = k * is * sum_dy_xhat[c] / m;
            coef.extend([
                k as f32,
                -slope as f32,
                (slope * mu - k * sum_dy[c] / m) as f32,
            ]);
        }
        x.apply_op2_no_bwd(dy, &GradInput { coef })
    }
}

/// `(x, dy)` to the `2 x C` f64 sums: row 0 `sum(dy)`, row 1 `sum(dy * xhat)`.
struct GradSums {
    mean: Vec<f64>,
    inv_std: Vec<f64>,
}

impl CustomOp2 for GradSums {
    fn name(&self) -> &'static str {
        "batch-norm-grad-sums"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = same_blocks(l1, l2)?;
        let x = f32_slice(s1, l1, OP, "input")?;
        let dy = f32_slice(s2, l2, OP, "output gradient")?;
        let sums = g.channel_sums(|b| {
            let (xb, dyb) = (g.run(x, b), g.run(dy, b));
            let mu = self.mean[g.channel(b)];
            [sum_map(dyb, |d| d), sum_pairs(xb, dyb, |v, d| (v - mu) * d)]
        });
        let mut out: Vec<f64> = sums.iter().map(|s| s[0]).collect();
        out.extend(sums.iter().zip(&self.inv_std).map(|(s, is)| s[1] * is));
        Ok((CpuStorage::F64(out), (2, g.c).into()))
    }
}

/// `(x, dy)` to `dx = a * dy + b * x + c`, `coef` holding `[a, b, c]` per channel.
struct GradInput {
    coef: Vec<f32>,
}

impl CustomOp2 for GradInput {
    fn name(&self) -> &'static str {
        "batch-norm-grad-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = same_blocks(l1, l2)?;
        let x = f32_slice(s1, l1, OP, "input")?;
        let dy = f32_slice(s2, l2, OP, "output gradient")?;
        if self.coef.len() != 3 * g.c {
            candle::bail!(
                "{OP}: {} gradient coefficients for {} channels",
                self.coef.len(),
                g.c
            )
        }
        let dx = g.map(|b| {
            let [k0, k1, k2] = [0, 1, 2].map(|i| self.coef[3 * g.channel(b) + i]);
            g.run(x, b).iter().zip(g.run(dy, b)).map(move |(&v, &d)| k0 * d + k1 * v + k2)
        });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

/// The common view of two same-shaped arguments.
fn same_blocks(l1: &Layout, l2: &Layout) -> Result<Blocks> {
    if l1.shape() != l2.shape() {
        candle::bail!(
            "{OP}: input {:?} and output gradient {:?} differ in shape",
            l1.shape(),
            l2.shape()
        )
    }
    Blocks::of(l1.dims())
}
