//! Bias-free square 2D convolution as used by IResNet (PyTorch layout `Cout x Cin x K x K`).
//! [`ConvBackend::Auto`] runs on [`crate::fastconv`] (im2col + GEMM with its own backward)
//! for f32 on the CPU; with the `cudnn` feature, on `crate::cudnn_conv` (forward, input and
//! weight gradients all on cuDNN) for f32/bf16/f16 on CUDA; and on candle's `conv2d`
//! otherwise (on CUDA without `cudnn`, candle's own kernels; with it, candle's forward is
//! cuDNN but its backward is not).
//!
//! Reference: `torch.nn.Conv2d(bias=False)`.

use candle::{Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};

/// Which convolution kernel a model uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConvBackend {
    /// `fastconv` for f32 on the CPU, `cudnn_conv` on CUDA with the `cudnn` feature, candle's
    /// conv otherwise (the default).
    #[default]
    Auto,
    /// Always candle's `Tensor::conv2d` (a reference for tests and benchmarks).
    Candle,
}

/// A bias-free convolution with a square kernel, loaded from `<prefix>.weight`.
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    stride: usize,
    padding: usize,
    backend: ConvBackend,
}

impl Conv2d {
    /// Loads a `cout x cin x k x k` kernel (PyTorch's default init hint for fresh VarMaps).
    pub fn new(
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        padding: usize,
        backend: ConvBackend,
        vb: VarBuilder,
    ) -> Result<Self> {
        let bound = 1.0 / ((cin * k * k) as f64).sqrt();
        let weight = vb.get_with_hints((cout, cin, k, k), "weight", Init::Uniform { lo: -bound, up: bound })?;
        Ok(Self { weight, stride, padding, backend })
    }

    /// The kernel tensor.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
}

/// `ARCFACE_CONV=candle` in the environment makes [`ConvBackend::Auto`] take candle's own
/// `conv2d` (for A/B timing against `fastconv`/`cudnn_conv`, or as a way around a broken
/// kernel); read once per process.
fn candle_forced() -> bool {
    static FORCED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FORCED.get_or_init(|| std::env::var("ARCFACE_CONV").is_ok_and(|v| v.eq_ignore_ascii_case("candle")))
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        crate::profile::timed("conv", x.device(), || self.forward_untimed(x))
    }
}

impl Conv2d {
    fn forward_untimed(&self, x: &Tensor) -> Result<Tensor> {
        match self.backend {
            ConvBackend::Auto if candle_forced() => x.conv2d(&self.weight, self.padding, self.stride, 1, 1),
            ConvBackend::Auto => {
                #[cfg(feature = "cudnn")]
                if crate::cudnn_conv::supports(x, &self.weight) {
                    return crate::cudnn_conv::conv2d(x, &self.weight, self.stride, self.padding);
                }
                crate::fastconv::conv2d(x, &self.weight, self.stride, self.padding)
            }
            ConvBackend::Candle => x.conv2d(&self.weight, self.padding, self.stride, 1, 1),
        }
    }
}
