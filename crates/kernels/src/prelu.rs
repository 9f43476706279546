//! Per-channel PReLU, `y = x` where `x > 0` and `y = w_c * x` elsewhere, with PyTorch's
//! gradients: `dx = dy` or `w_c * dy`, `dw_c = sum(dy * x)` over the non-positive inputs,
//! as functions of the input and the slopes (the layer lives in `arcface-backbone`).
//!
//! Reference: He et al., "Delving Deep into Rectifiers", 2015; `torch.nn.PReLU(C)`. On CPU
//! f32 the forward and backward are single-pass kernels over `N x C x L` blocks; on other
//! devices the forward is candle ops with a closed-form backward (`crate::closed_grad`); in
//! [`forward_reference`] (and on CPU for other dtypes), both are candle-nn's composition
//! `max(x, 0) + w * min(x, 0)` and autograd, which costs several full-size temporaries per
//! pass.

use std::sync::Arc;

use candle::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};

use crate::channelwise::{channel_slice, f32_slice, sum_pairs, Blocks};
use crate::closed_grad::{channel_sum, ncl, per_channel, with_closed_grad, ClosedGrad};
use crate::options::{KernelOptions, NormKernel};
use crate::profile::Profiler;

const OP: &str = "prelu";

/// PReLU of `x` (`N x C x ...`) with slopes `w` (`C` values) on the kernel `opts` chooses:
/// fused for CPU f32 input and slopes, [`forward_reference`] elsewhere on the CPU, the
/// closed-form path (or the fused CUDA kernels) on other devices.
pub fn forward(x: &Tensor, w: &Tensor, opts: &KernelOptions) -> Result<Tensor> {
    channels(x, w)?;
    let fused = x.device().is_cpu() && x.dtype() == DType::F32 && w.dtype() == DType::F32 && x.elem_count() > 0;
    if !fused {
        if x.device().is_cpu() || x.elem_count() == 0 || opts.norm == NormKernel::Reference {
            return forward_reference(x, w);
        }
        #[cfg(feature = "cuda")]
        if opts.cuda_norm_kernels && crate::cuda_norm::supports(x) {
            return forward_cuda_kernels(x, w, opts);
        }
        return forward_closed_grad(x, w, opts);
    }
    x.contiguous()?.apply_op2(&w.contiguous()?, PReluOp(opts.profiler.clone()))
}

/// Forward through candle's generic ops only, never the fused kernels: the reference that the
/// other paths are tested against. The slopes are cast to `x`'s dtype.
pub fn forward_reference(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let c = channels(x, w)?;
    let mut s = vec![1; x.rank()];
    s[1] = c;
    let w = w.to_dtype(x.dtype())?.reshape(s)?;
    let zeros = x.zeros_like()?;
    x.maximum(&zeros)? + x.minimum(&zeros)?.broadcast_mul(&w)?
}

/// The accelerator path on any device: forward with candle ops, backward in closed form
/// ([`crate::closed_grad`]). What CUDA runs by default.
pub fn forward_closed_grad(x: &Tensor, w: &Tensor, opts: &KernelOptions) -> Result<Tensor> {
    channels(x, w)?;
    let wx = w.to_dtype(x.dtype())?;
    let value = forward_reference(&x.detach(), w)?.detach();
    with_closed_grad(x, &wx, &value, Arc::new(PReluGrad), opts.profiler.clone())
}

/// The fused CUDA kernels ([`crate::cuda_norm`], feature `cuda`), forced; an error off CUDA.
/// What [`KernelOptions::cuda_norm_kernels`] selects.
pub fn forward_cuda_kernels(x: &Tensor, w: &Tensor, opts: &KernelOptions) -> Result<Tensor> {
    channels(x, w)?;
    #[cfg(feature = "cuda")]
    if crate::cuda_norm::supports(x) {
        let x = x.contiguous()?;
        let wf = w.detach().to_dtype(DType::F32)?;
        // The output is computed inside the op from x's storage (no copy of a value).
        let fwd = crate::cuda_norm::prelu_fwd_kernel(&x.detach(), &wf)?;
        return with_closed_grad(&x, w, &x.detach(), Arc::new(PReluKernelGrad(fwd)), opts.profiler.clone());
    }
    let _ = opts;
    candle::bail!("prelu: the CUDA kernels need the `cuda` feature and an f32/bf16 CUDA tensor, got {:?}", x.dtype())
}

/// The channel count of `x`, checked against the number of slopes.
fn channels(x: &Tensor, w: &Tensor) -> Result<usize> {
    if x.rank() < 2 {
        candle::bail!("prelu expects an N x C x ... input, got {:?}", x.shape())
    }
    let c = x.dim(1)?;
    if w.elem_count() != c {
        candle::bail!("prelu has {} slopes for an input of {c} channels ({:?})", w.elem_count(), x.shape())
    }
    Ok(c)
}

/// PReLU's backward with candle ops: `dx = g` where `x > 0`, `w_c * g` elsewhere;
/// `dw_c = sum(g * min(x, 0))`.
struct PReluGrad;

impl ClosedGrad for PReluGrad {
    fn name(&self) -> &'static str {
        OP
    }

    fn grads(&self, x: &Tensor, w: &Tensor, grad: &Tensor) -> Result<(Tensor, Tensor)> {
        let (x3, g3) = (ncl(x)?, ncl(grad)?);
        let negative = x3.minimum(0.0)?;
        let dw = channel_sum(&(&g3 * &negative)?)?;
        let dx = x3.gt(0.0)?.where_cond(&g3, &g3.broadcast_mul(&per_channel(w)?)?)?;
        Ok((dx.reshape(x.shape())?, dw))
    }
}

/// [`PReluGrad`] on the fused CUDA kernels: `dx` in one pass, `dw` as row sums.
#[cfg(feature = "cuda")]
struct PReluKernelGrad(crate::cuda_norm::RowKernel);

#[cfg(feature = "cuda")]
impl ClosedGrad for PReluKernelGrad {
    fn name(&self) -> &'static str {
        "prelu (CUDA kernels)"
    }

    fn cuda_output(&self, x: &candle::CudaStorage, l: &Layout) -> Option<Result<candle::CudaStorage>> {
        Some(self.0.apply(x, l))
    }

    fn grads(&self, x: &Tensor, w: &Tensor, grad: &Tensor) -> Result<(Tensor, Tensor)> {
        let (n, c) = (x.dim(0)?, x.dim(1)?);
        let g = grad.to_dtype(x.dtype())?.contiguous()?;
        let dx = crate::cuda_norm::prelu_dx(&g, x, &w.to_dtype(DType::F32)?)?;
        let dw = crate::cuda_norm::prelu_dw_rows(&g, x)?.reshape((n, c))?.sum(0)?.to_dtype(w.dtype())?;
        Ok((dx, dw))
    }
}

/// `(x, w)` to the PReLU output; its backward runs the two gradient kernels below, timed by
/// the profiler when there is one.
struct PReluOp(Option<Arc<Profiler>>);

impl CustomOp2 for PReluOp {
    fn name(&self) -> &'static str {
        "prelu"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = Blocks::of(l1.dims())?;
        let x = f32_slice(s1, l1, OP, "input")?;
        let w = channel_slice(s2, l2, g.c, OP, "weight")?;
        let y = g.map(|b| {
            let wc = w[g.channel(b)];
            g.run(x, b).iter().map(move |&v| if v > 0.0 { v } else { wc * v })
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        crate::profile::timed(self.0.as_deref(), "prelu backward", x.device(), || {
            let dy = grad.contiguous()?;
            let dx = match x.track_op() {
                true => Some(x.apply_op3_no_bwd(w, &dy, &GradInput)?),
                false => None,
            };
            let dw = match w.track_op() {
                true => Some(x.apply_op2_no_bwd(&dy, &GradWeight)?.reshape(w.shape())?),
                false => None,
            };
            Ok((dx, dw))
    
        })
    }
}

/// `(x, w, dy)` to `dx = dy` where `x > 0`, `w_c * dy` elsewhere.
struct GradInput;

impl CustomOp3 for GradInput {
    fn name(&self) -> &'static str {
        "prelu-grad-input"
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
        let g = same_blocks(l1, l3)?;
        let x = f32_slice(s1, l1, OP, "input")?;
        let w = channel_slice(s2, l2, g.c, OP, "weight")?;
        let dy = f32_slice(s3, l3, OP, "output gradient")?;
        let dx = g.map(|b| {
            let wc = w[g.channel(b)];
            g.run(x, b).iter().zip(g.run(dy, b)).map(move |(&v, &d)| if v > 0.0 { d } else { wc * d })
        });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

/// `(x, dy)` to `dw_c = sum(dy * x)` over the non-positive `x` of channel `c`, summed in f64.
struct GradWeight;

impl CustomOp2 for GradWeight {
    fn name(&self) -> &'static str {
        "prelu-grad-weight"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = same_blocks(l1, l2)?;
        let x = f32_slice(s1, l1, OP, "input")?;
        let dy = f32_slice(s2, l2, OP, "output gradient")?;
        let sums = g.channel_sums(|b| [sum_pairs(g.run(x, b), g.run(dy, b), |v, d| if v > 0.0 { 0.0 } else { v * d })]);
        let dw = sums.iter().map(|s| s[0] as f32).collect();
        Ok((CpuStorage::F32(dw), g.c.into()))
    }
}

/// The common view of an input and a same-shaped output gradient.
fn same_blocks(l1: &Layout, l2: &Layout) -> Result<Blocks> {
    if l1.shape() != l2.shape() {
        candle::bail!("{OP}: input {:?} and output gradient {:?} differ in shape", l1.shape(), l2.shape())
    }
    Blocks::of(l1.dims())
}
