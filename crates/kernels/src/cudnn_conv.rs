//! 2-D convolution whose forward pass and both backward passes run on cuDNN (feature
//! `cudnn`), as PyTorch's `cudnn_convolution` does.
//!
//! candle 0.11 with `cudnn` runs only `conv2d`'s forward through cuDNN: the input gradient
//! goes through its generic `conv_transpose2d` kernel and the weight gradient through a
//! convolution whose kernel is the whole output map, not cuDNN's backward kernels. Here three `CustomOp2`s call `cudnnConvolutionForward`,
//! `cudnnConvolutionBackwardData` and `cudnnConvolutionBackwardFilter` on contiguous NCHW
//! f32, bf16 or f16 tensors, always accumulating in f32 (the only configuration cuDNN has
//! for bf16). f16/bf16 may use tensor cores; f32 may use TF32 tensor cores unless
//! [`KernelOptions::allow_tf32`] is off (PyTorch's `torch.backends.cudnn.allow_tf32`).
//! The sizes are [`crate::conv::ConvGeometry`], shared with the CPU kernel.
//! Algorithms come from cuDNN's heuristics (`cudnnGetConvolution*Algorithm_v7`, as candle
//! does), cached per device, dtype, math mode and shape; handles are cached per device and
//! thread (cuDNN handles are not thread-safe).
//!
//! Reference: NVIDIA cuDNN API, `cudnn_cnn` library; PyTorch `aten/src/ATen/native/cudnn/Conv_v7.cpp`.

mod passes;

use std::sync::Arc;

use candle::{bail, CpuStorage, CudaStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};

use crate::conv::ConvGeometry;
use crate::options::KernelOptions;
use crate::profile::Profiler;
use passes::{dispatch, DataPass, FilterPass, ForwardPass};

const OP: &str = "cudnn_conv";

/// Whether [`conv2d`] takes these tensors: f32, bf16 or f16, same dtype, same CUDA device.
pub fn supports(x: &Tensor, w: &Tensor) -> bool {
    x.device().is_cuda()
        && x.device().same_device(w.device())
        && x.dtype() == w.dtype()
        && matches!(x.dtype(), DType::F32 | DType::BF16 | DType::F16)
}

/// Bias-free NCHW convolution (`x`: N x C x H x W, `w`: K x C x kh x kw, equal stride and
/// zero padding on both axes) on cuDNN, forward and backward. Errors on tensors that
/// [`supports`] rejects, rather than silently taking another kernel.
/// Reads `opts.allow_tf32` and `opts.profiler`.
pub fn conv2d(x: &Tensor, w: &Tensor, stride: usize, padding: usize, opts: &KernelOptions) -> Result<Tensor> {
    if !supports(x, w) {
        bail!(
            "cudnn_conv: needs f32, bf16 or f16 tensors on one CUDA device, got {:?} on {:?} and {:?} on {:?}",
            x.dtype(),
            x.device().location(),
            w.dtype(),
            w.device().location()
        )
    }
    // Validate before touching the graph so shape errors name the shapes.
    Geom::new(x.dims(), w.dims(), stride, padding, opts.allow_tf32)?;
    x.contiguous()?.apply_op2(
        &w.contiguous()?,
        Forward { stride, padding, allow_tf32: opts.allow_tf32, profiler: opts.profiler.clone() },
    )
}

/// One convolution as cuDNN runs it: its sizes and whether f32 may use TF32 tensor cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Geom {
    g: ConvGeometry,
    allow_tf32: bool,
}

impl Geom {
    fn new(x: &[usize], w: &[usize], stride: usize, pad: usize, allow_tf32: bool) -> Result<Self> {
        let g = ConvGeometry::new(OP, x, w, stride, pad)?;
        if g.n == 0 || g.c == 0 || g.k == 0 {
            bail!("{OP}: empty convolution (x {x:?}, w {w:?})")
        }
        // cuDNN's legacy API takes int dimensions and indexes tensors with int.
        let max = i32::MAX as usize;
        if [g.x_dims(), g.w_dims(), g.y_dims()].iter().any(|d| d.iter().product::<usize>() > max)
            || stride > max
            || pad > max
        {
            bail!("{OP}: sizes exceed cuDNN's 32-bit limits (x {x:?}, w {w:?})")
        }
        Ok(Self { g, allow_tf32 })
    }

    fn check(&self, what: &str, l: &Layout, want: [usize; 4]) -> Result<()> {
        if l.dims() != want || !l.is_contiguous() {
            bail!(
                "{OP}: {what} must be contiguous {want:?}, got {:?} (contiguous: {})",
                l.dims(),
                l.is_contiguous()
            )
        }
        Ok(())
    }
}

fn cpu_refused(name: &str) -> Result<(CpuStorage, Shape)> {
    bail!("{name}: cuDNN op called on the CPU (use arcface_kernels::fastconv there)")
}

/// `y = conv(x, w)`; its backward is the two ops below.
struct Forward {
    stride: usize,
    padding: usize,
    allow_tf32: bool,
    profiler: Option<Arc<Profiler>>,
}

impl CustomOp2 for Forward {
    fn name(&self) -> &'static str {
        "cudnn-conv2d"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        cpu_refused(self.name())
    }

    fn cuda_fwd(
        &self,
        x: &CudaStorage,
        lx: &Layout,
        w: &CudaStorage,
        lw: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let g = Geom::new(lx.dims(), lw.dims(), self.stride, self.padding, self.allow_tf32)?;
        g.check("x", lx, g.g.x_dims())?;
        g.check("w", lw, g.g.w_dims())?;
        Ok((dispatch(&ForwardPass(g), x, lx, w, lw)?, Shape::from(&g.g.y_dims())))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = Geom::new(x.dims(), w.dims(), self.stride, self.padding, self.allow_tf32)?;
        crate::conv::backward(
            x,
            w,
            grad,
            &g.g,
            self.profiler.as_deref(),
            |w, dy| dy.apply_op2_no_bwd(w, &BackwardData(g)),
            |x, dy| x.apply_op2_no_bwd(dy, &BackwardFilter(g)),
        )
    }
}

/// `dx` from `(dy, w)`.
struct BackwardData(Geom);

impl CustomOp2 for BackwardData {
    fn name(&self) -> &'static str {
        "cudnn-conv2d-backward-data"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        cpu_refused(self.name())
    }

    fn cuda_fwd(
        &self,
        dy: &CudaStorage,
        ly: &Layout,
        w: &CudaStorage,
        lw: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        self.0.check("dy", ly, self.0.g.y_dims())?;
        self.0.check("w", lw, self.0.g.w_dims())?;
        Ok((
            dispatch(&DataPass(self.0), dy, ly, w, lw)?,
            Shape::from(&self.0.g.x_dims()),
        ))
    }
}

/// `dw` from `(x, dy)`.
struct BackwardFilter(Geom);

impl CustomOp2 for BackwardFilter {
    fn name(&self) -> &'static str {
        "cudnn-conv2d-backward-filter"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        cpu_refused(self.name())
    }

    fn cuda_fwd(
        &self,
        x: &CudaStorage,
        lx: &Layout,
        dy: &CudaStorage,
        ly: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        self.0.check("x", lx, self.0.g.x_dims())?;
        self.0.check("dy", ly, self.0.g.y_dims())?;
        Ok((
            dispatch(&FilterPass(self.0), x, lx, dy, ly)?,
            Shape::from(&self.0.g.w_dims()),
        ))
    }
}
