//! Bias-free NCHW 2-D convolution with equal stride and zero padding on both axes, as
//! IResNet uses it: the geometry every convolution kernel shares, the dispatch between them
//! ([`conv2d`]), and the backward plumbing their custom ops have in common.
//!
//! Reference: `torch.nn.Conv2d(bias=False)`; output side `(h + 2 * pad - kh) / stride + 1`.

use candle::{bail, Result, Tensor};

use crate::options::{ConvKernel, KernelOptions};
use crate::profile::{timed, Profiler};

/// Bias-free convolution of `x` (`N x C x H x W`) with `w` (`K x C x kh x kw`) on the kernel
/// `opts` chooses: with [`ConvKernel::Auto`], [`crate::cudnn_conv`] on CUDA (feature `cudnn`,
/// f32/bf16/f16), [`crate::fastconv`] otherwise (which itself falls back to candle's conv off
/// CPU f32); with [`ConvKernel::Candle`], candle's `Tensor::conv2d`.
pub fn conv2d(x: &Tensor, w: &Tensor, stride: usize, padding: usize, opts: &KernelOptions) -> Result<Tensor> {
    match opts.conv {
        ConvKernel::Candle => x.conv2d(w, padding, stride, 1, 1),
        ConvKernel::Auto => {
            #[cfg(feature = "cudnn")]
            if crate::cudnn_conv::supports(x, w) {
                return crate::cudnn_conv::conv2d(x, w, stride, padding, opts);
            }
            crate::fastconv::conv2d(x, w, stride, padding, opts)
        }
    }
}

/// Sizes of one convolution, shared by the forward and backward kernels (and, on cuDNN, part
/// of the algorithm cache's key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ConvGeometry {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    pub ho: usize,
    pub wo: usize,
}

impl ConvGeometry {
    /// The geometry of `x` (`N x C x H x W`) and `w` (`K x C x kh x kw`); errors, prefixed
    /// with `op`, on shapes that do not make a convolution.
    pub fn new(op: &str, x: &[usize], w: &[usize], stride: usize, pad: usize) -> Result<Self> {
        let (&[n, c, h, wd], &[k, wc, kh, kw]) = (x, w) else {
            bail!("{op}: expected x N x C x H x W and w K x C x kh x kw, got {x:?} and {w:?}")
        };
        if c != wc {
            bail!("{op}: input has {c} channels but the kernel expects {wc} ({x:?}, {w:?})")
        }
        if stride == 0 || kh == 0 || kw == 0 {
            bail!("{op}: stride and kernel sizes must be positive (stride {stride}, {w:?})")
        }
        if h + 2 * pad < kh || wd + 2 * pad < kw {
            bail!("{op}: kernel {kh}x{kw} larger than padded input {h}x{wd} (padding {pad})")
        }
        let ho = (h + 2 * pad - kh) / stride + 1;
        let wo = (wd + 2 * pad - kw) / stride + 1;
        Ok(Self { n, c, h, w: wd, k, kh, kw, stride, pad, ho, wo })
    }

    /// A 1x1, stride-1, unpadded conv: its column matrix is the image itself.
    pub fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.pad == 0
    }

    /// `[N, C, H, W]`.
    pub fn x_dims(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }

    /// `[K, C, kh, kw]`.
    pub fn w_dims(&self) -> [usize; 4] {
        [self.k, self.c, self.kh, self.kw]
    }

    /// `[N, K, ho, wo]`.
    pub fn y_dims(&self) -> [usize; 4] {
        [self.n, self.k, self.ho, self.wo]
    }
}

/// The backward of a convolution op on `(x, w)` whose gradients are computed by two ops
/// without their own backward: `dx(w, dy)` and `dw(x, dy)`, each run only when its argument
/// is tracked (which saves the stem's input gradient on every step). `dy` is contiguous and
/// checked against the output shape; the whole pass is timed as "conv backward".
pub(crate) fn backward(
    x: &Tensor,
    w: &Tensor,
    grad: &Tensor,
    g: &ConvGeometry,
    profiler: Option<&Profiler>,
    dx: impl FnOnce(&Tensor, &Tensor) -> Result<Tensor>,
    dw: impl FnOnce(&Tensor, &Tensor) -> Result<Tensor>,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    timed(profiler, "conv backward", x.device(), || {
        if grad.dims() != g.y_dims() {
            bail!("conv backward: output gradient {:?}, expected {:?}", grad.dims(), g.y_dims())
        }
        let dy = grad.contiguous()?;
        let dx = match x.track_op() {
            true => Some(dx(&w.contiguous()?, &dy)?),
            false => None,
        };
        let dw = match w.track_op() {
            true => Some(dw(&x.contiguous()?, &dy)?),
            false => None,
        };
        Ok((dx, dw))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_matches_the_output_size_formula() -> Result<()> {
        // (56 + 2 - 3) / 2 + 1 = 28; (7 + 0 - 1) / 1 + 1 = 7.
        let g = ConvGeometry::new("t", &[2, 64, 56, 56], &[128, 64, 3, 3], 2, 1)?;
        assert_eq!((g.ho, g.wo), (28, 28));
        let g = ConvGeometry::new("t", &[1, 3, 7, 5], &[4, 3, 1, 1], 1, 0)?;
        assert_eq!((g.ho, g.wo), (7, 5));
        assert_eq!(g.y_dims(), [1, 4, 7, 5]);
        assert!(g.is_pointwise());
        Ok(())
    }

    #[test]
    fn geometry_rejects_bad_shapes() {
        assert!(ConvGeometry::new("t", &[1, 3, 8, 8], &[4, 2, 3, 3], 1, 1).is_err());
        assert!(ConvGeometry::new("t", &[1, 3, 2, 2], &[4, 3, 3, 3], 1, 0).is_err());
        assert!(ConvGeometry::new("t", &[1, 3, 8, 8], &[4, 3, 3, 3], 0, 1).is_err());
        assert!(ConvGeometry::new("t", &[3, 8, 8], &[4, 3, 3, 3], 1, 1).is_err());
    }
}
