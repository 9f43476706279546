//! 2-D convolution whose forward pass and both backward passes run on cuDNN (feature
//! `cudnn`), as PyTorch's `cudnn_convolution` does.
//!
//! candle 0.11 with `cudnn` runs only `conv2d`'s forward through cuDNN: the input gradient
//! goes through its generic `conv_transpose2d` kernel and the weight gradient through a
//! convolution whose kernel is the whole output map, not cuDNN's backward kernels. Here three `CustomOp2`s call `cudnnConvolutionForward`,
//! `cudnnConvolutionBackwardData` and `cudnnConvolutionBackwardFilter` on contiguous NCHW
//! f32, bf16 or f16 tensors, always accumulating in f32 (the only configuration cuDNN has
//! for bf16). f16/bf16 may use tensor cores; f32 may use TF32 tensor cores unless
//! [`set_allow_tf32`] turns them off (PyTorch's `torch.backends.cudnn.allow_tf32`).
//! Algorithms come from cuDNN's heuristics (`cudnnGetConvolution*Algorithm_v7`, as candle
//! does), cached per device, dtype, math mode and shape; handles are cached per device and
//! thread (cuDNN handles are not thread-safe).
//!
//! Reference: NVIDIA cuDNN API, `cudnn_cnn` library; PyTorch `aten/src/ATen/native/cudnn/Conv_v7.cpp`.

mod passes;

use std::sync::atomic::{AtomicBool, Ordering};

use candle::{bail, CpuStorage, CudaStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};

use passes::{dispatch, DataPass, FilterPass, ForwardPass};

static ALLOW_TF32: AtomicBool = AtomicBool::new(true);

/// Lets f32 convolutions use TF32 tensor cores (the default, as in PyTorch) or not.
pub fn set_allow_tf32(allow: bool) {
    ALLOW_TF32.store(allow, Ordering::Relaxed);
}

/// Whether f32 convolutions may use TF32 tensor cores.
pub fn allow_tf32() -> bool {
    ALLOW_TF32.load(Ordering::Relaxed)
}

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
pub fn conv2d(x: &Tensor, w: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
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
    Geom::new(x.dims(), w.dims(), stride, padding)?;
    x.contiguous()?
        .apply_op2(&w.contiguous()?, Forward { stride, padding })
}

/// Sizes of one convolution; also the shape part of the algorithm cache's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Geom {
    x: [usize; 4],
    w: [usize; 4],
    y: [usize; 4],
    stride: usize,
    pad: usize,
}

impl Geom {
    fn new(x: &[usize], w: &[usize], stride: usize, pad: usize) -> Result<Self> {
        let (&[n, c, h, wd], &[k, wc, kh, kw]) = (x, w) else {
            bail!("cudnn_conv: expected x N x C x H x W and w K x C x kh x kw, got {x:?} and {w:?}")
        };
        if c != wc {
            bail!("cudnn_conv: input has {c} channels but the kernel expects {wc} ({x:?}, {w:?})")
        }
        if stride == 0 || kh == 0 || kw == 0 || n == 0 || c == 0 || k == 0 {
            bail!(
                "cudnn_conv: empty or zero-stride convolution (x {x:?}, w {w:?}, stride {stride})"
            )
        }
        if h + 2 * pad < kh || wd + 2 * pad < kw {
            bail!("cudnn_conv: kernel {kh}x{kw} larger than padded input {h}x{wd} (padding {pad})")
        }
        let (ho, wo) = (
            (h + 2 * pad - kh) / stride + 1,
            (wd + 2 * pad - kw) / stride + 1,
        );
        let g = Geom {
            x: [n, c, h, wd],
            w: [k, c, kh, kw],
            y: [n, k, ho, wo],
            stride,
            pad,
        };
        // cuDNN's legacy API takes int dimensions and indexes tensors with int.
        let max = i32::MAX as usize;
        if [g.x, g.w, g.y]
            .iter()
            .any(|d| d.iter().product::<usize>() > max)
            || stride > max
            || pad > max
        {
            bail!("cudnn_conv: sizes exceed cuDNN's 32-bit limits (x {x:?}, w {w:?})")
        }
        Ok(g)
    }

    fn check(&self, what: &str, l: &Layout, want: [usize; 4]) -> Result<()> {
        if l.dims() != want || !l.is_contiguous() {
            bail!(
                "cudnn_conv: {what} must be contiguous {want:?}, got {:?} (contiguous: {})",
                l.dims(),
                l.is_contiguous()
            )
        }
        Ok(())
    }
}

fn cpu_refused(name: &str) -> Result<(CpuStorage, Shape)> {
    bail!("{name}: cuDNN op called on the CPU (use arcface_backbone::fastconv there)")
}

/// `y = conv(x, w)`; its backward is the two ops below.
struct Forward {
    stride: usize,
    padding: usize,
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
        let g = Geom::new(lx.dims(), lw.dims(), self.stride, self.padding)?;
        g.check("x", lx, g.x)?;
        g.check("w", lw, g.w)?;
        Ok((
            dispatch(&ForwardPass(g), x, lx, w, lw)?,
            Shape::from(g.y.to_vec()),
        ))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        crate::profile::timed("conv backward", x.device(), || {
            let g = Geom::new(x.dims(), w.dims(), self.stride, self.padding)?;
            if grad.dims() != g.y {
                bail!(
                    "cudnn_conv: output gradient {:?}, expected {:?}",
                    grad.dims(),
                    g.y
                )
            }
            let dy = grad.contiguous()?;
            // Skipping untracked arguments saves the stem's input gradient on every step.
            let dx = match x.track_op() {
                true => Some(dy.apply_op2_no_bwd(&w.contiguous()?, &BackwardData(g))?),
                false => None,
            };
            let dw = match w.track_op() {
                true => Some(x.contiguous()?.apply_op2_no_bwd(&dy, &BackwardFilter(g))?),
                false => None,
            };
            Ok((dx, dw))
    
        })
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
        self.0.check("dy", ly, self.0.y)?;
        self.0.check("w", lw, self.0.w)?;
        Ok((
            dispatch(&DataPass(self.0), dy, ly, w, lw)?,
            Shape::from(self.0.x.to_vec()),
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
        self.0.check("x", lx, self.0.x)?;
        self.0.check("dy", ly, self.0.y)?;
        Ok((
            dispatch(&FilterPass(self.0), x, lx, dy, ly)?,
            Shape::from(self.0.w.to_vec()),
        ))
    }
}
