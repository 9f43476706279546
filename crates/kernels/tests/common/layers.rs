//! Minimal BatchNorm and PReLU layers over the kernels' functional API, as the backbone's
//! layers call it, so that the kernel tests can own parameters and running statistics.

#![allow(dead_code)]

use arcface_kernels::batch_norm::{BatchNormParams, BatchNormPath, BN_EPS, BN_MOMENTUM};
use arcface_kernels::{prelu, KernelOptions};
use candle::{Module, Result, Tensor, Var};
use candle_nn::{Init, ModuleT, VarBuilder};

/// A BatchNorm layer on the default kernels.
pub struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Var,
    running_var: Var,
    opts: KernelOptions,
}

impl BatchNorm {
    /// Loads `weight`, `bias` and the running statistics; a frozen weight is detached.
    pub fn new(c: usize, frozen: bool, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints(c, "weight", Init::Const(1.0))?;
        let weight = if frozen { weight.detach() } else { weight };
        Ok(Self {
            weight,
            bias: vb.get_with_hints(c, "bias", Init::Const(0.0))?,
            running_mean: Var::from_tensor(&vb.get_with_hints(c, "running_mean", Init::Const(0.0))?)?,
            running_var: Var::from_tensor(&vb.get_with_hints(c, "running_var", Init::Const(1.0))?)?,
            opts: KernelOptions::default(),
        })
    }

    fn run(&self, x: &Tensor, train: bool, path: BatchNormPath) -> Result<Tensor> {
        let p = BatchNormParams {
            weight: &self.weight,
            bias: &self.bias,
            running_mean: &self.running_mean,
            running_var: &self.running_var,
            eps: BN_EPS,
            momentum: BN_MOMENTUM,
        };
        p.forward(x, train, path, &self.opts)
    }

    /// candle ops and autograd.
    pub fn forward_reference(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.run(x, train, BatchNormPath::Reference)
    }

    /// candle ops forward, closed-form backward (the CUDA default).
    pub fn forward_closed_grad(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.run(x, train, BatchNormPath::ClosedGrad)
    }

    /// The fused CUDA kernels, forced.
    pub fn forward_cuda_kernels(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.run(x, train, BatchNormPath::CudaKernels)
    }
}

impl ModuleT for BatchNorm {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.run(x, train, BatchNormPath::Auto)
    }
}

/// A PReLU layer on the default kernels.
pub struct PReLU(Tensor);

impl PReLU {
    /// Slopes `w`.
    pub fn new(w: Tensor) -> Self {
        Self(w)
    }

    /// candle ops and autograd.
    pub fn forward_reference(&self, x: &Tensor) -> Result<Tensor> {
        prelu::forward_reference(x, &self.0)
    }

    /// candle ops forward, closed-form backward.
    pub fn forward_closed_grad(&self, x: &Tensor) -> Result<Tensor> {
        prelu::forward_closed_grad(x, &self.0, &KernelOptions::default())
    }

    /// The fused CUDA kernels, forced.
    pub fn forward_cuda_kernels(&self, x: &Tensor) -> Result<Tensor> {
        prelu::forward_cuda_kernels(x, &self.0, &KernelOptions::default())
    }
}

impl Module for PReLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        prelu::forward(x, &self.0, &KernelOptions::default())
    }
}
