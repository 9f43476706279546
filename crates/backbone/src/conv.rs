//! Bias-free square 2D convolution as used by IResNet (PyTorch layout `Cout x Cin x K x K`):
//! the layer owns its kernel tensor and geometry; the arithmetic is
//! [`arcface_kernels::conv2d`], on the kernel its [`KernelOptions`] chooses, or, in a copy
//! made by [`Conv2d::frozen`], [`FrozenConv`] (Winograd for 3x3 stride 1 on the CPU).
//!
//! Reference: `torch.nn.Conv2d(bias=False)`.

use arcface_kernels::profile::timed;
use arcface_kernels::{Epilogue, FrozenConv, KernelOptions};
use candle::{Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};

/// A bias-free convolution with a square kernel, loaded from `<prefix>.weight`.
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    stride: usize,
    padding: usize,
    kernels: KernelOptions,
    /// Set in a frozen copy: the kernel as it was then, prepared for inference.
    frozen: Option<FrozenConv>,
}

impl Conv2d {
    /// Loads a `cout x cin x k x k` kernel (PyTorch's default init hint for fresh VarMaps).
    pub fn new(
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        padding: usize,
        kernels: &KernelOptions,
        vb: VarBuilder,
    ) -> Result<Self> {
        let bound = 1.0 / ((cin * k * k) as f64).sqrt();
        let weight = vb.get_with_hints((cout, cin, k, k), "weight", Init::Uniform { lo: -bound, up: bound })?;
        Ok(Self { weight, stride, padding, kernels: kernels.clone(), frozen: None })
    }

    /// The kernel tensor.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// A copy for eval-mode forwards: the kernel copied now (later changes to this layer's
    /// variable do not reach it), `epilogue` (the BatchNorm and PReLU after it) folded in, and
    /// prepared by [`FrozenConv`]; its outputs carry no gradient.
    pub fn frozen(&self, epilogue: Epilogue) -> Result<Self> {
        let frozen = FrozenConv::new(&self.weight, self.stride, self.padding, epilogue, &self.kernels)?;
        Ok(Self { weight: frozen.weight().clone(), frozen: Some(frozen), ..self.clone() })
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        timed(self.kernels.profiler(), "conv", x.device(), || match &self.frozen {
            Some(frozen) => frozen.forward(x, &self.kernels),
            None => arcface_kernels::conv2d(x, &self.weight, self.stride, self.padding, &self.kernels),
        })
    }
}
