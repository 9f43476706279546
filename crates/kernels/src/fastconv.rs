//! Fast CPU 2-D convolution for candle: a `CustomOp2` whose forward and both backward
//! passes are im2col/col2im plus large GEMMs through the `gemm` crate.
//!
//! candle 0.11's CPU conv2d lowers 3x3 convolutions with a scalar, single-threaded
//! re-layout, computes the input gradient with a direct `conv_transpose2d` loop and the
//! weight gradient as a convolution whose kernel is the whole output map (a GEMM nine
//! columns wide). Here the forward is `y_n = W @ im2col(x_n)`, the input gradient
//! `dx_n = col2im(W^T @ dy_n)` and the weight gradient `dW = sum_n dy_n @ im2col(x_n)^T`,
//! as in Caffe and PyTorch's CPU `slow_conv2d`. Small output maps (the 7x7 stage of an
//! IResNet) batch several images into one GEMM (module `grouped`); larger ones run one
//! image per thread (`kernels`); with fewer images than threads the forward shares each
//! image among the threads (`split`). 3x3 stride-1 convolutions over at least 8 channels run
//! their forward and input gradient on Winograd F(2x2, 3x3) instead (`winograd`). On other devices or dtypes [`conv2d`] falls
//! back to candle's `Tensor::conv2d`, so it is always usable. The sizes are
//! [`crate::conv::ConvGeometry`], shared with the cuDNN kernel.

mod grouped;
mod im2col;
mod kernels;
mod matmul;
mod pairs;
mod split;
pub(crate) mod winograd;

use std::sync::Arc;

use grouped::Groups;

use candle::{bail, CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};

use crate::channelwise;
use crate::conv::ConvGeometry as Geometry;
use crate::isa::Isa;
use crate::options::KernelOptions;
use crate::profile::Profiler;

const OP: &str = "fastconv";

/// Bias-free NCHW 2-D convolution (`x`: N x C x H x W, `w`: K x C x kh x kw) with equal
/// stride and zero padding on both axes; fast path on CPU f32, candle's conv elsewhere. Only
/// `opts.profiler` (it times the backward pass) and `opts.max_isa` are read.
pub fn conv2d(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    padding: usize,
    opts: &KernelOptions,
) -> Result<Tensor> {
    let fast = x.device().is_cpu()
        && w.device().is_cpu()
        && x.dtype() == DType::F32
        && w.dtype() == DType::F32;
    if !fast {
        return x.conv2d(w, padding, stride, 1, 1);
    }
    // Validate before touching the graph so shape errors read like candle's own.
    Geometry::new(OP, x.dims(), w.dims(), stride, padding)?;
    let x = x.contiguous()?;
    let w = w.contiguous()?;
    x.apply_op2(
        &w,
        FastConv2d {
            stride,
            padding,
            profiler: opts.profiler.clone(),
            isa: opts.max_isa,
        },
    )
}

/// The contiguous f32 data of a CPU storage, or an error naming the op.
fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    channelwise::f32_slice(s, l, OP, what)
}

/// The forward on the Winograd kernel, for 3x3 stride-1 convolutions over enough channels:
/// 2.25x fewer multiplications than im2col even with the kernel transformed on every call
/// (that transform is `1 / (N * Ho * Wo / 4)` of the work).
fn winograd_forward(g: &Geometry, x: &[f32], w: &[f32], isa: Isa) -> Option<Vec<f32>> {
    if !winograd::supports(g) || g.c < winograd::MIN_CHANNELS {
        return None;
    }
    let u = winograd::transform_kernels(w, g.k, g.c);
    Some(winograd::forward(g, x, &u, winograd::Epilogue::default(), rayon::current_num_threads(), isa))
}

/// The input gradient of a 3x3 stride-1 convolution on the Winograd kernel: the convolution
/// of `dy` with the kernel transposed (`C x K`) and turned 180 degrees, padded `2 - pad`,
/// which gives back the input's size.
fn winograd_backward_input(g: &Geometry, w: &[f32], dy: &[f32], isa: Isa) -> Option<Vec<f32>> {
    if !winograd::supports(g) || g.k < winograd::MIN_CHANNELS {
        return None;
    }
    let gt = Geometry::new(OP, &[g.n, g.k, g.ho, g.wo], &[g.c, g.k, 3, 3], 1, 2 - g.pad).ok()?;
    debug_assert_eq!((gt.ho, gt.wo), (g.h, g.w));
    let u = winograd::transform_kernels_transposed(w, g.k, g.c);
    Some(winograd::forward(&gt, dy, &u, winograd::Epilogue::default(), rayon::current_num_threads(), isa))
}

/// Forward op on `(x, w)`; its backward builds the two gradients with the ops below.
struct FastConv2d {
    stride: usize,
    padding: usize,
    profiler: Option<Arc<Profiler>>,
    isa: Isa,
}

impl CustomOp2 for FastConv2d {
    fn name(&self) -> &'static str {
        "fastconv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geometry::new(OP, l1.dims(), l2.dims(), self.stride, self.padding)?;
        let x = f32_slice(s1, l1, "input")?;
        let w = f32_slice(s2, l2, "weight")?;
        let y = match (winograd_forward(&g, x, w, self.isa), Groups::new(&g)) {
            (Some(y), _) => y,
            (None, Some(groups)) => grouped::forward(&g, &groups, x, w, self.isa),
            (None, None) => kernels::forward(&g, x, w, self.isa),
        };
        Ok((CpuStorage::F32(y), Shape::from(&g.y_dims())))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = Geometry::new(OP, x.dims(), w.dims(), self.stride, self.padding)?;
        crate::conv::backward(
            x,
            w,
            grad,
            &g,
            self.profiler.as_deref(),
            |w, dy| w.apply_op2_no_bwd(dy, &BackwardInput(g, self.isa)),
            |x, dy| x.apply_op2_no_bwd(dy, &BackwardWeight(g, self.isa)),
        )
    }
}

/// Input gradient op on `(w, dy)`.
struct BackwardInput(Geometry, Isa);

impl CustomOp2 for BackwardInput {
    fn name(&self) -> &'static str {
        "fastconv2d-backward-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        check_dims(l1, Shape::from(&g.w_dims()), "weight")?;
        check_dims(l2, Shape::from(&g.y_dims()), "output gradient")?;
        let w = f32_slice(s1, l1, "weight")?;
        let dy = f32_slice(s2, l2, "output gradient")?;
        let dx = match (winograd_backward_input(g, w, dy, self.1), Groups::new(g)) {
            (Some(dx), _) => dx,
            (None, Some(groups)) => grouped::backward_input(g, &groups, w, dy, self.1),
            (None, None) => kernels::backward_input(g, w, dy, self.1),
        };
        Ok((CpuStorage::F32(dx), Shape::from(&g.x_dims())))
    }
}

/// Weight gradient op on `(x, dy)`.
struct BackwardWeight(Geometry, Isa);

impl CustomOp2 for BackwardWeight {
    fn name(&self) -> &'static str {
        "fastconv2d-backward-weight"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        check_dims(l1, Shape::from(&g.x_dims()), "input")?;
        check_dims(l2, Shape::from(&g.y_dims()), "output gradient")?;
        let x = f32_slice(s1, l1, "input")?;
        let dy = f32_slice(s2, l2, "output gradient")?;
        let dw = match Groups::new(g) {
            Some(groups) => grouped::backward_weight(g, &groups, x, dy, self.1),
            None => kernels::backward_weight(g, x, dy, self.1),
        };
        Ok((CpuStorage::F32(dw), Shape::from(&g.w_dims())))
    }
}

fn check_dims(l: &Layout, expected: Shape, what: &str) -> Result<()> {
    if l.shape() != &expected {
        bail!(
            "fastconv: {what} has shape {:?}, expected {expected:?}",
            l.shape()
        )
    }
    Ok(())
}
