//! The typed choice of kernels a model runs on, passed to every layer instead of switches
//! read from the environment: a library user gets the defaults (the fastest checked kernels)
//! with no setup, and a binary may build a different value from its own flags or variables.

use std::sync::Arc;

use crate::isa::Isa;
use crate::profile::Profiler;

/// Which kernels the layers use, and whether they are timed. `Default` is the tested,
/// fastest configuration; every other value is for A/B timing or working around a kernel.
#[derive(Debug, Clone)]
pub struct KernelOptions {
    /// The convolution kernel.
    pub conv: ConvKernel,
    /// BatchNorm's and PReLU's training path off the CPU.
    pub norm: NormKernel,
    /// Run BatchNorm (training) and PReLU on the fused CUDA kernels of [`crate::cuda_norm`]
    /// (feature `cuda`); off by default until a GPU run has checked them.
    pub cuda_norm_kernels: bool,
    /// Let f32 cuDNN convolutions use TF32 tensor cores (on by default, as in PyTorch's
    /// `torch.backends.cudnn.allow_tf32`).
    pub allow_tf32: bool,
    /// What a CUDA device does with freed memory ([`crate::device::select_device`]).
    pub cuda_pool: CudaPool,
    /// Where layers add their forward and backward times; `None` (the default) times nothing.
    pub profiler: Option<Arc<Profiler>>,
    /// The highest vector extension the hand-written CPU kernels may use (the best the CPU
    /// has by default; lower it to run and test the AVX2 or generic builds).
    pub max_isa: Isa,
}

impl Default for KernelOptions {
    fn default() -> Self {
        Self {
            conv: ConvKernel::Auto,
            norm: NormKernel::Auto,
            cuda_norm_kernels: false,
            allow_tf32: true,
            cuda_pool: CudaPool::Keep,
            profiler: None,
            max_isa: Isa::Avx512,
        }
    }
}

impl KernelOptions {
    /// The profiler, if profiling is on.
    pub fn profiler(&self) -> Option<&Profiler> {
        self.profiler.as_deref()
    }
}

/// Which convolution kernel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConvKernel {
    /// [`crate::fastconv`] for f32 on the CPU, [`crate::cudnn_conv`] on CUDA with the `cudnn`
    /// feature, candle's `conv2d` otherwise.
    #[default]
    Auto,
    /// Always candle's `Tensor::conv2d` (a reference for tests and benchmarks).
    Candle,
}

/// How BatchNorm (training) and PReLU run off the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NormKernel {
    /// Fused kernels on CPU f32; elsewhere candle ops with a closed-form backward
    /// ([`crate::closed_grad`]).
    #[default]
    Auto,
    /// candle ops and autograd on every device except CPU f32 (for A/B timing).
    Reference,
}

/// What the CUDA driver's memory pool does with freed blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CudaPool {
    /// Keep them for reuse (release threshold at its maximum), as PyTorch's caching
    /// allocator does.
    #[default]
    Keep,
    /// The driver's default: give them back at every synchronization (for A/B timing).
    Release,
}
