//! A convolution frozen for inference: its kernel copied once (later changes to the
//! original tensor do not reach it) and, for 3x3 stride-1 convolutions on CPU f32, also
//! transformed once for the Winograd kernel ([`crate::fastconv`]'s `winograd` module), which
//! does 2.25x fewer multiplications than im2col. An eval-mode BatchNorm after the
//! convolution folds into the kernel and a bias, and a PReLU after that is applied as the
//! output is written ([`Epilogue`]). Its outputs carry no gradient.

use std::sync::Arc;

use candle::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};

use crate::conv::ConvGeometry;
use crate::fastconv::winograd;
use crate::isa::Isa;
use crate::options::{ConvKernel, KernelOptions};

const OP: &str = "frozen-conv";

/// What a frozen convolution does to its output, per output channel.
#[derive(Debug, Clone, Default)]
pub struct Epilogue {
    /// `y * scale + shift` (`K` values each): an eval-mode BatchNorm after the convolution,
    /// folded into the kernel (`w_k * scale_k`) and a bias (`shift_k`).
    pub affine: Option<(Tensor, Tensor)>,
    /// PReLU slopes (`K` values) applied after the affine.
    pub prelu: Option<Tensor>,
}

/// An NCHW convolution (as [`crate::conv2d`]) with a fixed kernel and an optional
/// [`Epilogue`], for eval-mode forwards.
#[derive(Debug, Clone)]
pub struct FrozenConv {
    weight: Tensor,
    stride: usize,
    padding: usize,
    /// The folded affine's shift, as a bias (`K` values).
    bias: Option<Tensor>,
    /// PReLU slopes (`K` values).
    prelu: Option<Tensor>,
    /// The kernel in the Winograd domain, when the convolution qualifies.
    winograd: Option<Arc<Vec<f32>>>,
}

impl FrozenConv {
    /// Copies `weight` (`K x C x kh x kw`), folds `epilogue`'s affine into it and, for a
    /// 3x3 stride-1 kernel over at least 8 channels on CPU f32 with `padding <= 2` and a `conv` choice of
    /// [`ConvKernel::Auto`], transforms it for the Winograd kernel.
    pub fn new(
        weight: &Tensor,
        stride: usize,
        padding: usize,
        epilogue: Epilogue,
        opts: &KernelOptions,
    ) -> Result<Self> {
        let k = weight.dim(0)?;
        let per_channel = |t: &Tensor, what: &str| -> Result<Tensor> {
            match t.dims() {
                [n] if *n == k => t.detach().to_dtype(weight.dtype())?.copy(),
                d => candle::bail!("{OP}: {what} has shape {d:?}, expected [{k}] (one per output channel)"),
            }
        };
        let (weight, bias) = match &epilogue.affine {
            Some((scale, shift)) => {
                let scale = per_channel(scale, "the affine's scale")?;
                let folded = weight.detach().broadcast_mul(&scale.reshape((k, 1, 1, 1))?)?;
                (folded, Some(per_channel(shift, "the affine's shift")?))
            }
            None => (weight.detach().copy()?, None),
        };
        let prelu = epilogue
            .prelu
            .as_ref()
            .map(|p| per_channel(p, "the PReLU slopes"))
            .transpose()?;
        let winograd = match weight.dims() {
            &[k, c, 3, 3]
                if c >= winograd::MIN_CHANNELS
                    && opts.conv == ConvKernel::Auto
                    && stride == 1
                    && padding <= 2
                    && weight.device().is_cpu()
                    && weight.dtype() == DType::F32 =>
            {
                let w = weight.flatten_all()?.to_vec1::<f32>()?;
                Some(Arc::new(winograd::transform_kernels(&w, k, c)))
            }
            _ => None,
        };
        Ok(Self {
            weight,
            stride,
            padding,
            bias,
            prelu,
            winograd,
        })
    }

    /// The (copied, folded) kernel.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// Whether forwards of CPU f32 inputs run on the Winograd kernel.
    pub fn is_winograd(&self) -> bool {
        self.winograd.is_some()
    }

    /// The convolution of `x` (`N x C x H x W`) and its epilogue: Winograd where prepared and
    /// `x` is CPU f32, [`crate::conv2d`] on `opts` otherwise. The output is detached from any
    /// graph.
    pub fn forward(&self, x: &Tensor, opts: &KernelOptions) -> Result<Tensor> {
        if let (Some(u), true) = (&self.winograd, x.device().is_cpu() && x.dtype() == DType::F32) {
            let g = ConvGeometry::new(OP, x.dims(), self.weight.dims(), self.stride, self.padding)?;
            let vec = |t: &Option<Tensor>| t.as_ref().map(|t| t.to_vec1::<f32>()).transpose();
            let op = Winograd {
                g,
                u: u.clone(),
                bias: vec(&self.bias)?,
                slopes: vec(&self.prelu)?,
                isa: opts.max_isa,
            };
            return x.contiguous()?.apply_op1_no_bwd(&op);
        }
        let mut y = crate::conv2d(x, &self.weight, self.stride, self.padding, opts)?.detach();
        if let Some(bias) = &self.bias {
            y = y.broadcast_add(&bias.to_dtype(y.dtype())?.reshape((1, bias.elem_count(), 1, 1))?)?;
        }
        if let Some(slopes) = &self.prelu {
            y = crate::prelu::forward(&y, slopes, opts)?;
        }
        Ok(y)
    }
}

/// The forward op: the input's geometry (checked against the kernel) and the kernel.
struct Winograd {
    g: ConvGeometry,
    u: Arc<Vec<f32>>,
    bias: Option<Vec<f32>>,
    slopes: Option<Vec<f32>>,
    isa: Isa,
}

impl CustomOp1 for Winograd {
    fn name(&self) -> &'static str {
        "winograd-conv2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = crate::channelwise::f32_slice(s, l, OP, "input")?;
        let epilogue = winograd::Epilogue {
            bias: self.bias.as_deref(),
            slopes: self.slopes.as_deref(),
        };
        let y = winograd::forward(&self.g, x, &self.u, epilogue, rayon::current_num_threads(), self.isa);
        Ok((CpuStorage::F32(y), Shape::from(&self.g.y_dims())))
    }
}
