//! Per-channel PReLU layer, `y = x` where `x > 0` and `y = w_c * x` elsewhere: the layer owns
//! the slopes; the arithmetic (fused CPU kernels, closed-form backward off the CPU, the
//! reference on candle ops) is [`arcface_kernels::prelu`].
//!
//! Reference: He et al., "Delving Deep into Rectifiers", 2015; `torch.nn.PReLU(C)`.

use arcface_kernels::profile::timed;
use arcface_kernels::{prelu, KernelOptions};
use candle::{Module, Result, Tensor};

/// PReLU with one learned slope per channel (dim 1 of an `N x C x ...` input).
#[derive(Debug, Clone)]
pub struct PReLU {
    weight: Tensor,
    kernels: KernelOptions,
}

impl PReLU {
    /// A PReLU whose slopes are `weight` (`C` values), on the default kernels.
    pub fn new(weight: Tensor) -> Self {
        Self::with_kernels(weight, &KernelOptions::default())
    }

    /// A PReLU whose slopes are `weight`, on the kernels `kernels` chooses.
    pub fn with_kernels(weight: Tensor, kernels: &KernelOptions) -> Self {
        Self { weight, kernels: kernels.clone() }
    }

    /// A copy whose slopes are copied now (later changes to the variable do not reach it).
    pub fn frozen(&self) -> Result<Self> {
        Ok(Self { weight: self.weight.detach().copy()?, kernels: self.kernels.clone() })
    }

    /// The per-channel slopes.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// Forward through candle's generic ops only, never the fused kernels: the reference
    /// that the fused path is tested against. The slopes are cast to `x`'s dtype.
    pub fn forward_reference(&self, x: &Tensor) -> Result<Tensor> {
        prelu::forward_reference(x, &self.weight)
    }
}

impl Module for PReLU {
    /// Fused kernel for CPU f32 input and slopes, [`PReLU::forward_reference`] elsewhere on
    /// the CPU, the closed-form backward on other devices.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        timed(self.kernels.profiler(), "prelu", x.device(), || prelu::forward(x, &self.weight, &self.kernels))
    }
}
