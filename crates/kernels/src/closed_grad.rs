//! A layer whose forward value is computed with ordinary candle ops on detached inputs and
//! whose backward is a closed form written with candle ops: the path BatchNorm and PReLU
//! take off the CPU (on CUDA).
//!
//! Why: candle differentiates `x * scale[c]` by summing the output gradient over dims
//! (0, 2, 3) in one reduction, which on CUDA runs one thread block per channel through a
//! generic strided-index loop: 64-512 blocks on a 132-SM GPU, with integer divisions per
//! element. A BatchNorm + PReLU pair makes several such reductions per backward pass. The
//! closed forms here reduce the contiguous `H*W` axis first (one block per `(n, c)` row) and
//! then the small `N x C` result, and skip the autograd graph of the forward's temporaries.
//!
//! Mechanism: a [`CustomOp3`] over `(x, p, value)` whose forward is a copy of `value` (one
//! device-to-device copy) and whose `bwd` calls [`ClosedGrad::grads`] for `x` and `p`.

use std::sync::Arc;

use crate::profile::Profiler;
use candle::{bail, CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor, D};

/// The gradients of a layer `y = f(x, p)` given `dL/dy`.
pub(crate) trait ClosedGrad: Send + Sync {
    /// Names the op in errors.
    fn name(&self) -> &'static str;
    /// `(dL/dx, dL/dp)` from `x`, `p` and `grad = dL/dy` (same shape as `x`).
    fn grads(&self, x: &Tensor, p: &Tensor, grad: &Tensor) -> Result<(Tensor, Tensor)>;

    /// Computes the output on CUDA from the third argument's storage instead of copying it
    /// (then [`with_closed_grad`]'s `value` is the input itself); `None` copies `value`.
    #[cfg(feature = "cuda")]
    fn cuda_output(&self, _value: &candle::CudaStorage, _layout: &Layout) -> Option<Result<candle::CudaStorage>> {
        None
    }
}

/// `value` (computed from detached `x` and `p`, same shape as `x`) as a tensor whose
/// gradients with respect to `x` and `p` are `g`'s closed forms.
/// The backward is timed by `profiler` when given.
pub(crate) fn with_closed_grad(
    x: &Tensor,
    p: &Tensor,
    value: &Tensor,
    g: Arc<dyn ClosedGrad>,
    profiler: Option<Arc<Profiler>>,
) -> Result<Tensor> {
    if value.shape() != x.shape() {
        bail!("{}: value {:?} does not have the input's shape {:?}", g.name(), value.shape(), x.shape())
    }
    let value = value.detach().contiguous()?;
    x.apply_op3(p, &value, WithGrad(g, profiler))
}

struct WithGrad(Arc<dyn ClosedGrad>, Option<Arc<Profiler>>);

/// The element range `value` covers, which must be its whole storage (`len` elements).
fn whole(name: &str, l: &Layout, len: usize) -> Result<()> {
    match l.contiguous_offsets() {
        Some((0, end)) if end == len => Ok(()),
        _ => {
            bail!("{name}: internal error, the forward value is not a whole contiguous buffer ({l:?}, {len} elements)")
        }
    }
}

impl CustomOp3 for WithGrad {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        v: &CpuStorage,
        lv: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let len = match v {
            CpuStorage::F32(s) => s.len(),
            CpuStorage::F64(s) => s.len(),
            CpuStorage::BF16(s) => s.len(),
            CpuStorage::F16(s) => s.len(),
            other => bail!(
                "{}: expects a float tensor, got {:?}",
                self.name(),
                candle::backend::BackendStorage::dtype(other)
            ),
        };
        whole(self.name(), lv, len)?;
        Ok((v.clone(), lv.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _: &candle::CudaStorage,
        _: &Layout,
        _: &candle::CudaStorage,
        _: &Layout,
        v: &candle::CudaStorage,
        lv: &Layout,
    ) -> Result<(candle::CudaStorage, Shape)> {
        if let Some(out) = self.0.cuda_output(v, lv) {
            return Ok((out?, lv.shape().clone()));
        }
        use candle::backend::BackendStorage;
        use candle::cuda_backend::CudaStorageSlice as S;
        let len = match &v.slice {
            S::F32(s) => s.len(),
            S::F64(s) => s.len(),
            S::BF16(s) => s.len(),
            S::F16(s) => s.len(),
            _ => bail!("{}: expects a float tensor, got {:?}", self.name(), v.dtype()),
        };
        whole(self.name(), lv, len)?;
        Ok((v.try_clone(lv)?, lv.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        p: &Tensor,
        _value: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let label = if self.0.name().starts_with("batch-norm") { "batch-norm backward" } else { "prelu backward" };
        let (gx, gp) = crate::profile::timed(self.1.as_deref(), label, x.device(), || self.0.grads(&x.detach(), &p.detach(), &grad.detach()))?;
        Ok((Some(gx), Some(gp), None))
    }
}

/// `x` (`N x C x ...`) as `N x C x L`, contiguous.
pub(crate) fn ncl(x: &Tensor) -> Result<Tensor> {
    let (n, c) = (x.dim(0)?, x.dim(1)?);
    x.contiguous()?.reshape((n, c, ()))
}

/// Per-channel sum of an `N x C x L` tensor: the contiguous `L` axis first, then `N`.
pub(crate) fn channel_sum(x3: &Tensor) -> Result<Tensor> {
    x3.sum(D::Minus1)?.sum(0)
}

/// A `C` vector as `1 x C x 1` for broadcasting against `N x C x L`.
pub(crate) fn per_channel(v: &Tensor) -> Result<Tensor> {
    v.reshape((1, (), 1))
}

/// f32 or f64 only: half precision is converted by the callers before.
pub(crate) fn check_float(name: &str, x: &Tensor) -> Result<()> {
    match x.dtype() {
        DType::F32 | DType::F64 => Ok(()),
        other => bail!("{name}: expects f32 or f64 here, got {other:?}"),
    }
}
