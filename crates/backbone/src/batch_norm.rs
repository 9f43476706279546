//! Batch normalization with PyTorch's training semantics (batch statistics, biased variance
//! for normalizing, unbiased variance for the running estimate, momentum 0.1) and an
//! optionally frozen scale, as InsightFace's `features` BatchNorm1d needs.
//!
//! Reference: Ioffe & Szegedy, "Batch Normalization", 2015; `torch.nn.BatchNorm2d`.
//! candle-nn's `BatchNorm` is not used because its scale is always a trainable tensor and
//! its training path transposes the whole activation to make it contiguous. On CPU f32 the
//! training forward and backward are fused kernels (`fused.rs`); on other devices the
//! forward is a composition of candle ops with a closed-form backward (`crate::closed_grad`,
//! see there why); in [`BatchNorm::forward_reference`], both are candle ops and autograd.

use std::sync::Arc;

use candle::{DType, Result, Tensor, Var, D};
use candle_nn::{Init, ModuleT, VarBuilder};

use crate::closed_grad::{channel_sum, check_float, ncl, per_channel, with_closed_grad, ClosedGrad};

mod fused;

/// PyTorch's default epsilon, also InsightFace's.
pub const BN_EPS: f64 = 1e-5;
/// PyTorch's default running-statistics momentum.
pub const BN_MOMENTUM: f64 = 0.1;

/// BatchNorm over dim 1 of an `N x C` or `N x C x H x W` tensor.
#[derive(Debug, Clone)]
pub struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Var,
    running_var: Var,
    eps: f64,
    momentum: f64,
}

impl BatchNorm {
    /// Loads `weight`, `bias`, `running_mean`, `running_var` of `channels` elements.
    /// With `frozen_weight`, the scale is detached so that it never receives a gradient.
    pub fn new(channels: usize, frozen_weight: bool, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints(channels, "weight", Init::Const(1.0))?;
        let weight = if frozen_weight { weight.detach() } else { weight };
        let bias = vb.get_with_hints(channels, "bias", Init::Const(0.0))?;
        // `Var::from_tensor` keeps a VarMap's variable (same storage), so updating the
        // running statistics here updates what `save_weights` writes.
        let running_mean = Var::from_tensor(&vb.get_with_hints(channels, "running_mean", Init::Const(0.0))?)?;
        let running_var = Var::from_tensor(&vb.get_with_hints(channels, "running_var", Init::Const(1.0))?)?;
        Ok(Self { weight, bias, running_mean, running_var, eps: BN_EPS, momentum: BN_MOMENTUM })
    }

    /// The running mean (a buffer, not a parameter).
    pub fn running_mean(&self) -> &Tensor {
        self.running_mean.as_tensor()
    }

    /// The running (unbiased) variance.
    pub fn running_var(&self) -> &Tensor {
        self.running_var.as_tensor()
    }

    /// Forward through candle's generic ops only, never the fused CPU kernels: the
    /// reference that the fused path is tested against. Same dtypes and side effects
    /// (running statistics in training) as [`ModuleT::forward_t`].
    pub fn forward_reference(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_with(x, train, Path::Reference)
    }

    /// The accelerator path on any device: batch statistics with candle ops, backward in
    /// closed form ([`crate::closed_grad`]). What CUDA runs; public for its tests on CPU.
    #[doc(hidden)]
    pub fn forward_closed_grad(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_with(x, train, Path::ClosedGrad)
    }

    /// The fused CUDA kernels ([`crate::cuda_norm`], feature `cuda`) for training, forced;
    /// an error off CUDA. What `ARCFACE_CUDA_KERNELS=1` selects; public for its GPU test.
    #[doc(hidden)]
    pub fn forward_cuda_kernels(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_with(x, train, Path::CudaKernels)
    }

    /// Half-precision input is normalized in f32 and cast back, so that sums and variances
    /// never round to 8 mantissa bits.
    fn forward_with(&self, x: &Tensor, train: bool, path: Path) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        if train
            && (path == Path::CudaKernels || (path == Path::Auto && crate::cuda_norm::enabled()))
            && crate::cuda_norm::supports(x)
        {
            return self.train_cuda_kernels(x);
        }
        if path == Path::CudaKernels && train {
            candle::bail!("batch-norm: the CUDA kernels need the `cuda` feature and an f32/bf16 CUDA tensor")
        }
        match x.dtype() {
            DType::F32 | DType::F64 => self.forward_float(x, train, path),
            DType::BF16 | DType::F16 => self.forward_float(&x.to_dtype(DType::F32)?, train, path)?.to_dtype(x.dtype()),
            other => candle::bail!("batch-norm expects a float input, got {other:?}"),
        }
    }

    /// `x` is f32 or f64; the scale and shift are cast to its dtype (a no-op when equal).
    fn forward_float(&self, x: &Tensor, train: bool, path: Path) -> Result<Tensor> {
        let weight = self.weight.to_dtype(x.dtype())?;
        let bias = self.bias.to_dtype(x.dtype())?;
        let c = Self::channel_shape(x)?[1];
        if !train {
            let mean = self.running_mean.as_detached_tensor().to_dtype(x.dtype())?;
            let var = self.running_var.as_detached_tensor().to_dtype(x.dtype())?;
            return self.affine(x, &weight, &bias, &mean, &var);
        }
        let count = x.elem_count() / c.max(1);
        if count < 2 {
            candle::bail!("batch-norm training needs more than one value per channel, got {:?}", x.shape())
        }
        let path = match path {
            Path::Auto if x.device().is_cpu() && x.dtype() == DType::F32 => Path::Fused,
            Path::Auto if x.device().is_cpu() || crate::closed_grad::disabled() => Path::Reference,
            Path::Auto | Path::CudaKernels => Path::ClosedGrad,
            p => p,
        };
        if path == Path::Fused {
            let (y, stats) = fused::train_forward(x, &weight, &bias, self.eps)?;
            let mean = Tensor::new(stats.mean.as_slice(), x.device())?;
            let var = Tensor::new(stats.var.as_slice(), x.device())?;
            self.update_running(&mean, &var, count)?;
            return Ok(y);
        }
        if path == Path::ClosedGrad {
            return self.train_closed_grad(x, &weight, &bias, count);
        }
        // Reduce the contiguous spatial axis first, then the batch axis: both are cheap.
        let x3 = x.reshape((x.dim(0)?, c, ()))?;
        let mean = (x3.sum(D::Minus1)?.sum(0)? / count as f64)?;
        let centered = x3.broadcast_sub(&mean.reshape((1, c, 1))?)?;
        let var = (centered.sqr()?.sum(D::Minus1)?.sum(0)? / count as f64)?;
        self.update_running(&mean.detach(), &var.detach(), count)?;
        self.affine(x, &weight, &bias, &mean, &var)
    }

    /// Training forward on the fused CUDA kernels (f32 or bf16 `x`, statistics in f32),
    /// backward by [`BnKernelGrad`].
    #[cfg(feature = "cuda")]
    fn train_cuda_kernels(&self, x: &Tensor) -> Result<Tensor> {
        use crate::cuda_norm as k;
        let (n, c) = (x.dim(0)?, x.dim(1)?);
        let count = x.elem_count() / c;
        if count < 2 {
            candle::bail!("batch-norm training needs more than one value per channel, got {:?}", x.shape())
        }
        let m = count as f64;
        let x = x.contiguous()?;
        let xd = x.detach();
        let zeros = Tensor::zeros(c, DType::F32, x.device())?;
        let rough = (k::row_moments(&xd, &zeros)?.get(0)?.reshape((n, c))?.sum(0)? / m)?;
        // Second read centred on the first mean, as in `train_closed_grad`.
        let s = k::row_moments(&xd, &rough)?.reshape((2, n, c))?.sum(1)?;
        let d = (s.get(0)? / m)?;
        let mean = (&rough + &d)?;
        let var = ((s.get(1)? / m)? - d.sqr()?)?.relu()?;
        self.update_running(&mean, &var, count)?;
        let inv_std = (&var + self.eps)?.sqrt()?.recip()?;
        let w = self.weight.detach().to_dtype(DType::F32)?;
        let b = self.bias.detach().to_dtype(DType::F32)?;
        let scale = (&w * &inv_std)?;
        let shift = (&b - (&mean * &scale)?)?;
        // The output is computed inside the op from x's storage: no copy of a precomputed value.
        let affine = k::affine_kernel(&xd, &scale, &shift)?;
        let p = Tensor::stack(&[&self.weight, &self.bias], 0)?;
        with_closed_grad(&x, &p, &xd, Arc::new(BnKernelGrad { mean, inv_std, weight: w, zeros, count, affine }))
    }

    /// Training forward from detached inputs, backward by [`BnGrad`].
    fn train_closed_grad(&self, x: &Tensor, weight: &Tensor, bias: &Tensor, count: usize) -> Result<Tensor> {
        check_float("batch-norm", x)?;
        let x3 = ncl(&x.detach())?;
        let m = count as f64;
        let rough = (channel_sum(&x3)? / m)?;
        let centered = x3.broadcast_sub(&per_channel(&rough)?)?;
        // Second pass on the centred values: `d` is the first mean's rounding error (large
        // where a channel's mean dwarfs its spread), removed from the mean and the variance.
        let d = (channel_sum(&centered)? / m)?;
        let mean = (&rough + &d)?;
        let var = ((channel_sum(&centered.sqr()?)? / m)? - d.sqr()?)?.relu()?;
        self.update_running(&mean, &var, count)?;
        let inv_std = (&var + self.eps)?.sqrt()?.recip()?;
        let (w, b) = (weight.detach(), bias.detach());
        let scale = (&w * &inv_std)?;
        let shift = (&b - (&d * &scale)?)?;
        let y3 = centered.broadcast_mul(&per_channel(&scale)?)?.broadcast_add(&per_channel(&shift)?)?;
        let value = y3.reshape(x.shape())?;
        // The parameters travel as one 2 x C tensor; `stack`'s backward splits the gradient
        // (a frozen, detached scale then gets none).
        let p = Tensor::stack(&[weight, bias], 0)?;
        with_closed_grad(x, &p, &value, Arc::new(BnGrad { mean, inv_std, weight: w, count }))
    }

    /// `N x C x ...` to the broadcast shape of a per-channel vector, `[1, C, 1, ...]`.
    fn channel_shape(x: &Tensor) -> Result<Vec<usize>> {
        if x.rank() < 2 {
            candle::bail!("batch-norm input must have at least 2 dims, got {:?}", x.shape())
        }
        let mut s = vec![1; x.rank()];
        s[1] = x.dim(1)?;
        Ok(s)
    }

    /// Normalizes with `mean`/`var` (shape `C`) then applies scale and shift, as one affine
    /// map `x * a + b` so the backward pass stays short.
    fn affine(&self, x: &Tensor, w: &Tensor, b: &Tensor, mean: &Tensor, var: &Tensor) -> Result<Tensor> {
        let s = Self::channel_shape(x)?;
        let inv_std = (var + self.eps)?.sqrt()?.recip()?;
        let scale = (w * &inv_std)?;
        let shift = (b - (mean * &scale)?)?;
        x.broadcast_mul(&scale.reshape(s.as_slice())?)?.broadcast_add(&shift.reshape(s.as_slice())?)
    }

    /// Momentum update of the running statistics from a batch's `mean` and biased `var`
    /// over `count` values per channel (the variance is stored unbiased, as in PyTorch).
    fn update_running(&self, mean: &Tensor, var: &Tensor, count: usize) -> Result<()> {
        let m = self.momentum;
        let unbiased = count as f64 / (count as f64 - 1.0);
        let (rm, rv) = (self.running_mean.as_tensor(), self.running_var.as_tensor());
        let new_mean = ((rm * (1.0 - m))? + (mean.to_dtype(rm.dtype())? * m)?)?;
        let new_var = ((rv * (1.0 - m))? + (var.to_dtype(rv.dtype())? * (m * unbiased))?)?;
        self.running_mean.set(&new_mean)?;
        self.running_var.set(&new_var)
    }
}

impl ModuleT for BatchNorm {
    /// Batch statistics when `train` (fused kernels on CPU f32, closed-form backward on
    /// other devices), running statistics otherwise. f32 and f64 inputs are computed in their
    /// dtype, bf16 and f16 in f32.
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        crate::profile::timed("batch-norm", x.device(), || self.forward_with(x, train, Path::Auto))
    }
}

/// Which implementation of the training forward (and so of the backward) runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Fused on CPU f32, reference elsewhere on CPU, closed-form off the CPU.
    Auto,
    Fused,
    Reference,
    ClosedGrad,
    /// The fused CUDA kernels (feature `cuda`).
    CudaKernels,
}

/// [`BnGrad`]'s formulas on the fused CUDA kernels: `db` and the centred `sum((g - mean(g)) *
/// (x - mean))` as row sums, then `dx` in one pass; per-channel math in f32.
#[cfg(feature = "cuda")]
struct BnKernelGrad {
    mean: Tensor,
    inv_std: Tensor,
    weight: Tensor,
    zeros: Tensor,
    count: usize,
    affine: crate::cuda_norm::RowKernel,
}

#[cfg(feature = "cuda")]
impl ClosedGrad for BnKernelGrad {
    fn name(&self) -> &'static str {
        "batch-norm (CUDA kernels)"
    }

    fn cuda_output(&self, x: &candle::CudaStorage, l: &candle::Layout) -> Option<Result<candle::CudaStorage>> {
        Some(self.affine.apply(x, l))
    }

    fn grads(&self, x: &Tensor, p: &Tensor, grad: &Tensor) -> Result<(Tensor, Tensor)> {
        use crate::cuda_norm as k;
        let (n, c) = (x.dim(0)?, x.dim(1)?);
        let m = self.count as f64;
        let g = grad.to_dtype(x.dtype())?.contiguous()?;
        let db = k::row_moments(&g, &self.zeros)?.get(0)?.reshape((n, c))?.sum(0)?;
        let gmean = (&db / m)?;
        let dot = k::bn_dot(&g, x, &gmean, &self.mean)?.reshape((n, c))?.sum(0)?;
        let dw = (&dot * &self.inv_std)?;
        let kk = (&self.weight * &self.inv_std)?;
        let q = ((&dw / m)? * &self.inv_std)?;
        let dx = k::bn_dx(&g, x, &self.mean, &kk, &gmean, &q)?;
        Ok((dx, Tensor::stack(&[&dw, &db], 0)?.to_dtype(p.dtype())?))
    }
}

/// Training-mode BatchNorm's backward with the batch statistics saved by the forward
/// (`M` values per channel, `xhat = (x - mean) * inv_std`, `y = w * xhat + b`):
/// `db = sum(g)`, `dw = sum(g * xhat)`, `dx = w * inv_std * (g - db / M - xhat * dw / M)`
/// (Ioffe & Szegedy 2015, section 3, written per channel).
struct BnGrad {
    mean: Tensor,
    inv_std: Tensor,
    weight: Tensor,
    count: usize,
}

impl ClosedGrad for BnGrad {
    fn name(&self) -> &'static str {
        "batch-norm"
    }

    fn grads(&self, x: &Tensor, _p: &Tensor, grad: &Tensor) -> Result<(Tensor, Tensor)> {
        let m = self.count as f64;
        let (x3, g3) = (ncl(x)?, ncl(grad)?);
        let xhat = x3.broadcast_sub(&per_channel(&self.mean)?)?.broadcast_mul(&per_channel(&self.inv_std)?)?;
        let db = channel_sum(&g3)?;
        // `dw = sum(g * xhat) = sum((g - mean(g)) * xhat)` as `sum(xhat) = 0`; the centred form
        // avoids the cancellation when a channel's gradient has a large mean.
        let gc = g3.broadcast_sub(&per_channel(&(&db / m)?)?)?;
        let dw = channel_sum(&(&gc * &xhat)?)?;
        let k = (&self.weight * &self.inv_std)?;
        let dx = gc.sub(&xhat.broadcast_mul(&per_channel(&(&dw / m)?)?)?)?.broadcast_mul(&per_channel(&k)?)?;
        Ok((dx.reshape(x.shape())?, Tensor::stack(&[&dw, &db], 0)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::Device;
    use candle_nn::VarMap;

    // Expected values computed by hand for channel 0 = [1, 3, 5, 7] (N=2, H*W=2) and
    // channel 1 = [0, 0, 2, 2]: mean 4 and 1, biased var 5 and 1, unbiased 20/3 and 4/3.
    #[test]
    fn train_mode_matches_hand_values() -> Result<()> {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let bn = BatchNorm::new(2, false, vb)?;
        let x = Tensor::new(&[[[1f32, 3.], [0., 0.]], [[5., 7.], [2., 2.]]], &dev)?;
        let y = bn.forward_t(&x, true)?;
        let s5 = (5f32 + 1e-5).sqrt();
        let s1 = (1f32 + 1e-5).sqrt();
        let want = [[[-3. / s5, -1. / s5], [-1. / s1, -1. / s1]], [[1. / s5, 3. / s5], [1. / s1, 1. / s1]]];
        let got = y.to_vec3::<f32>()?;
        for (g, w) in got.iter().flatten().flatten().zip(want.iter().flatten().flatten()) {
            assert!((g - w).abs() < 1e-6, "{g} vs {w}");
        }
        let rm = bn.running_mean().to_vec1::<f32>()?;
        let rv = bn.running_var().to_vec1::<f32>()?;
        assert!((rm[0] - 0.4).abs() < 1e-6 && (rm[1] - 0.1).abs() < 1e-6);
        assert!((rv[0] - (0.9 + 0.1 * 20. / 3.)).abs() < 1e-6);
        assert!((rv[1] - (0.9 + 0.1 * 4. / 3.)).abs() < 1e-6);
        // The update went into the VarMap's own variable.
        let stored = varmap.data().lock().unwrap()["running_mean"].as_tensor().to_vec1::<f32>()?;
        assert_eq!(stored, rm);
        Ok(())
    }

    #[test]
    fn eval_mode_uses_running_stats_and_frozen_weight_gets_no_grad() -> Result<()> {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let bn = BatchNorm::new(2, true, vb)?;
        {
            let data = varmap.data().lock().unwrap();
            data["running_mean"].set(&Tensor::new(&[1f32, -2.], &dev)?)?;
            data["running_var"].set(&Tensor::new(&[4f32, 0.25], &dev)?)?;
            data["bias"].set(&Tensor::new(&[0.5f32, 0.], &dev)?)?;
        }
        let x = Var::new(&[[3f32, -2.]], &dev)?;
        let y = bn.forward_t(x.as_tensor(), false)?;
        let got = y.to_vec2::<f32>()?;
        assert!((got[0][0] - (2. / (4f32 + 1e-5).sqrt() + 0.5)).abs() < 1e-6);
        assert!(got[0][1].abs() < 1e-6);
        let grads = y.sum_all()?.backward()?;
        let data = varmap.data().lock().unwrap();
        assert!(grads.get(data["weight"].as_tensor()).is_none());
        assert!(grads.get(data["bias"].as_tensor()).is_some());
        assert!(grads.get(data["running_mean"].as_tensor()).is_none());
        Ok(())
    }
}
