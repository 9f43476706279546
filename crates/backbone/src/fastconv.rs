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
//! image per thread (`kernels`). On other devices or dtypes [`conv2d`] falls
//! back to candle's `Tensor::conv2d`, so it is always usable.

mod grouped;
mod im2col;
mod kernels;
mod matmul;

use grouped::Groups;

use candle::{bail, CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};

/// Bias-free NCHW 2-D convolution (`x`: N x C x H x W, `w`: K x C x kh x kw) with equal
/// stride and zero padding on both axes; fast path on CPU f32, candle's conv elsewhere.
pub fn conv2d(x: &Tensor, w: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let fast = x.device().is_cpu()
        && w.device().is_cpu()
        && x.dtype() == DType::F32
        && w.dtype() == DType::F32;
    if !fast {
        return x.conv2d(w, padding, stride, 1, 1);
    }
    // Validate before touching the graph so shape errors read like candle's own.
    Geometry::new(x.dims(), w.dims(), stride, padding)?;
    let x = x.contiguous()?;
    let w = w.contiguous()?;
    x.apply_op2(&w, FastConv2d { stride, padding })
}

/// Sizes of one convolution, shared by the forward and backward kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    pad: usize,
    ho: usize,
    wo: usize,
}

impl Geometry {
    fn new(x: &[usize], w: &[usize], stride: usize, pad: usize) -> Result<Self> {
        let (&[n, c, h, wd], &[k, wc, kh, kw]) = (x, w) else {
            bail!("fastconv: expected x N x C x H x W and w K x C x kh x kw, got {x:?} and {w:?}")
        };
        if c != wc {
            bail!("fastconv: input has {c} channels but the kernel expects {wc} ({x:?}, {w:?})")
        }
        if stride == 0 || kh == 0 || kw == 0 {
            bail!("fastconv: stride and kernel sizes must be positive (stride {stride}, {w:?})")
        }
        if h + 2 * pad < kh || wd + 2 * pad < kw {
            bail!("fastconv: kernel {kh}x{kw} larger than padded input {h}x{wd} (padding {pad})")
        }
        let ho = (h + 2 * pad - kh) / stride + 1;
        let wo = (wd + 2 * pad - kw) / stride + 1;
        Ok(Geometry {
            n,
            c,
            h,
            w: wd,
            k,
            kh,
            kw,
            stride,
            pad,
            ho,
            wo,
        })
    }

    /// A 1x1, stride-1, unpadded conv: its column matrix is the image itself.
    fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.pad == 0
    }

    fn x_dims(&self) -> (usize, usize, usize, usize) {
        (self.n, self.c, self.h, self.w)
    }

    fn w_dims(&self) -> (usize, usize, usize, usize) {
        (self.k, self.c, self.kh, self.kw)
    }

    fn y_dims(&self) -> (usize, usize, usize, usize) {
        (self.n, self.k, self.ho, self.wo)
    }
}

/// The contiguous f32 data of a CPU storage, or an error naming the op.
fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = s else {
        bail!("fastconv: {what} must be f32")
    };
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("fastconv: {what} must be contiguous (layout {l:?})"),
    }
}

/// Forward op on `(x, w)`; its backward builds the two gradients with the ops below.
struct FastConv2d {
    stride: usize,
    padding: usize,
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
        let g = Geometry::new(l1.dims(), l2.dims(), self.stride, self.padding)?;
        let x = f32_slice(s1, l1, "input")?;
        let w = f32_slice(s2, l2, "weight")?;
        let y = match Groups::new(&g) {
            Some(groups) => grouped::forward(&g, &groups, x, w),
            None => kernels::forward(&g, x, w),
        };
        Ok((CpuStorage::F32(y), g.y_dims().into()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        crate::profile::timed("conv backward", x.device(), || {
            let g = Geometry::new(x.dims(), w.dims(), self.stride, self.padding)?;
            let dy = grad.contiguous()?;
            // Skipping untracked arguments saves the stem's input gradient on every step.
            let dx = match x.track_op() {
                true => Some(w.contiguous()?.apply_op2_no_bwd(&dy, &BackwardInput(g))?),
                false => None,
            };
            let dw = match w.track_op() {
                true => Some(x.contiguous()?.apply_op2_no_bwd(&dy, &BackwardWeight(g))?),
                false => None,
            };
            Ok((dx, dw))
    
        })
    }
}

/// Input gradient op on `(w, dy)`.
struct BackwardInput(Geometry);

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
        check_dims(l1, g.w_dims().into(), "weight")?;
        check_dims(l2, g.y_dims().into(), "output gradient")?;
        let w = f32_slice(s1, l1, "weight")?;
        let dy = f32_slice(s2, l2, "output gradient")?;
        let dx = match Groups::new(g) {
            Some(groups) => grouped::backward_input(g, &groups, w, dy),
            None => kernels::backward_input(g, w, dy),
        };
        Ok((CpuStorage::F32(dx), g.x_dims().into()))
    }
}

/// Weight gradient op on `(x, dy)`.
struct BackwardWeight(Geometry);

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
        check_dims(l1, g.x_dims().into(), "input")?;
        check_dims(l2, g.y_dims().into(), "output gradient")?;
        let x = f32_slice(s1, l1, "input")?;
        let dy = f32_slice(s2, l2, "output gradient")?;
        let dw = match Groups::new(g) {
            Some(groups) => grouped::backward_weight(g, &groups, x, dy),
            None => kernels::backward_weight(g, x, dy),
        };
        Ok((CpuStorage::F32(dw), g.w_dims().into()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_matches_the_output_size_formula() -> Result<()> {
        // (56 + 2 - 3) / 2 + 1 = 28; (7 + 0 - 1) / 1 + 1 = 7.
        let g = Geometry::new(&[2, 64, 56, 56], &[128, 64, 3, 3], 2, 1)?;
        assert_eq!((g.ho, g.wo), (28, 28));
        let g = Geometry::new(&[1, 3, 7, 5], &[4, 3, 1, 1], 1, 0)?;
        assert_eq!((g.ho, g.wo), (7, 5));
        assert!(g.is_pointwise());
        Ok(())
    }

    #[test]
    fn geometry_rejects_bad_shapes() {
        assert!(Geometry::new(&[1, 3, 8, 8], &[4, 2, 3, 3], 1, 1).is_err());
        assert!(Geometry::new(&[1, 3, 2, 2], &[4, 3, 3, 3], 1, 0).is_err());
        assert!(Geometry::new(&[1, 3, 8, 8], &[4, 3, 3, 3], 0, 1).is_err());
        assert!(Geometry::new(&[3, 8, 8], &[4, 3, 3, 3], 1, 1).is_err());
    }
}
