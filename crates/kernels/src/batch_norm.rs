//! Batch normalization with PyTorch's training semantics (batch statistics, biased variance
//! for normalizing, unbiased variance for the running estimate) as a function of the layer's
//! tensors, in the manner of `torch.nn.functional.batch_norm`: the layer that owns them lives
//! in `arcface-backbone`.
//!
//! Reference: Ioffe & Szegedy, "Batch Normalization", 2015; `torch.nn.BatchNorm2d`.
//! On CPU f32 the training forward and backward are fused kernels (`fused.rs`); on other
//! devices the forward is a composition of candle ops with a closed-form backward
//! (`crate::closed_grad`, see there why), or the fused CUDA kernels of [`crate::cuda_norm`]
//! when [`KernelOptions::cuda_norm_kernels`] is on; with [`BatchNormPath::Reference`], both
//! are candle ops and autograd.

use std::sync::Arc;

use candle::{DType, Result, Tensor, Var, D};

use crate::closed_grad::{channel_sum, check_float, ncl, per_channel, with_closed_grad, ClosedGrad};
use crate::options::{KernelOptions, NormKernel};

mod fused;

/// PyTorch's default epsilon, also InsightFace's.
pub const BN_EPS: f64 = 1e-5;
/// PyTorch's default running-statistics momentum.
pub const BN_MOMENTUM: f64 = 0.1;

/// Which implementation of the training forward (and so of the backward) runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchNormPath {
    /// What [`KernelOptions`] selects: fused on CPU f32, reference elsewhere on CPU,
    /// closed-form (or the CUDA kernels) off the CPU.
    Auto,
    /// candle ops and autograd on every device: the reference the others are tested against.
    Reference,
    /// candle ops forward, closed-form backward: what CUDA runs, usable on any device.
    ClosedGrad,
    /// The fused CUDA kernels (feature `cuda`), forced: an error off CUDA.
    CudaKernels,
}

/// One BatchNorm layer's tensors, borrowed for a forward pass over dim 1 of an `N x C` or
/// `N x C x H x W` tensor. In training the running statistics are updated in place (the
/// `Var`s share storage with the layer's, so a VarMap sees the update).
#[derive(Debug, Clone, Copy)]
pub struct BatchNormParams<'a> {
    /// Scale (`C` values); detach it to freeze it.
    pub weight: &'a Tensor,
    /// Shift (`C` values).
    pub bias: &'a Tensor,
    /// Running mean, a buffer.
    pub running_mean: &'a Var,
    /// Running (unbiased) variance, a buffer.
    pub running_var: &'a Var,
    /// Added to the variance before the square root.
    pub eps: f64,
    /// Weight of the batch statistics in the running-statistics update.
    pub momentum: f64,
}

impl BatchNormParams<'_> {
    /// Batch statistics when `train` (through `path`), running statistics otherwise.
    /// Half-precision input is normalized in f32 and cast back, so that sums and variances
    /// never round to 8 mantissa bits. `opts.profiler` times the backward.
    pub fn forward(&self, x: &Tensor, train: bool, path: BatchNormPath, opts: &KernelOptions) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        if train
            && (path == BatchNormPath::CudaKernels || (path == BatchNormPath::Auto && opts.cuda_norm_kernels))
            && crate::cuda_norm::supports(x)
        {
            return self.train_cuda_kernels(x, opts);
        }
        if path == BatchNormPath::CudaKernels && train {
            candle::bail!("batch-norm: the CUDA kernels need the `cuda` feature and an f32/bf16 CUDA tensor")
        }
        match x.dtype() {
            DType::F32 | DType::F64 => self.forward_float(x, train, path, opts),
            DType::BF16 | DType::F16 => {
                self.forward_float(&x.to_dtype(DType::F32)?, train, path, opts)?.to_dtype(x.dtype())
            }
            other => candle::bail!("batch-norm expects a float input, got {other:?}"),
        }
    }

    /// `x` is f32 or f64; the scale and shift are cast to its dtype (a no-op when equal).
    fn forward_float(&self, x: &Tensor, train: bool, path: BatchNormPath, opts: &KernelOptions) -> Result<Tensor> {
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
            BatchNormPath::Auto if x.device().is_cpu() && x.dtype() == DType::F32 => Path::Fused,
            BatchNormPath::Auto if x.device().is_cpu() || opts.norm == NormKernel::Reference => Path::Reference,
            BatchNormPath::Auto | BatchNormPath::CudaKernels | BatchNormPath::ClosedGrad => Path::ClosedGrad,
            BatchNormPath::Reference => Path::Reference,
        };
        if path == Path::Fused {
            let (y, stats) = fused::train_forward(x, &weight, &bias, self.eps, opts.profiler.clone())?;
            let mean = Tensor::new(stats.mean.as_slice(), x.device())?;
            let var = Tensor::new(stats.var.as_slice(), x.device())?;
            self.update_running(&mean, &var, count)?;
            return Ok(y);
        }
        if path == Path::ClosedGrad {
            return self.train_closed_grad(x, &weight, &bias, count, opts);
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
    fn train_cuda_kernels(&self, x: &Tensor, opts: &KernelOptions) -> Result<Tensor> {
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
        let p = Tensor::stack(&[self.weight, self.bias], 0)?;
        let grad = Arc::new(BnKernelGrad { mean, inv_std, weight: w, zeros, count, affine });
        with_closed_grad(&x, &p, &xd, grad, opts.profiler.clone())
    }

    /// Training forward from detached inputs, backward by [`BnGrad`].
    fn train_closed_grad(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        count: usize,
        opts: &KernelOptions,
    ) -> Result<Tensor> {
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
        with_closed_grad(x, &p, &value, Arc::new(BnGrad { mean, inv_std, weight: w, count }), opts.profiler.clone())
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

/// The resolved training path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    Fused,
    Reference,
    ClosedGrad,
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
