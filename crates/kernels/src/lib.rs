//! arcface-kernels: the CPU and CUDA kernels that IResNet training runs on in candle, and the
//! typed [`KernelOptions`] that chooses between them.
//!
//! candle 0.11 leaves several hot paths slow for this model: its CPU convolution (forward
//! and, above all, backward), its autograd through BatchNorm and PReLU (a dozen generic
//! kernels each), and its CUDA convolution backward (not on cuDNN). This crate fills those
//! gaps with custom ops that plug into candle's autograd: [`fastconv`] (im2col + GEMM on the
//! CPU; [`FrozenConv`] adds Winograd for inference), [`cudnn_conv`] (feature `cudnn`), fused BatchNorm-training and PReLU kernels on the
//! CPU and, opt-in, on CUDA (feature `cuda`), and closed-form backward passes. Every choice is
//! a field of [`KernelOptions`]; nothing is read from the environment.
//!
//! ```no_run
//! use arcface_kernels::{conv2d, ConvKernel, KernelOptions};
//! # fn main() -> candle::Result<()> {
//! let x = candle::Tensor::zeros((2, 64, 56, 56), candle::DType::F32, &candle::Device::Cpu)?;
//! let w = candle::Tensor::zeros((64, 64, 3, 3), candle::DType::F32, &candle::Device::Cpu)?;
//! let y = conv2d(&x, &w, 1, 1, &KernelOptions::default())?; // fastconv on the CPU
//! let reference = KernelOptions { conv: ConvKernel::Candle, ..Default::default() };
//! let y_candle = conv2d(&x, &w, 1, 1, &reference)?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

#[cfg(feature = "mimalloc")]
pub mod allocator;
pub mod batch_norm;
mod channelwise;
mod closed_grad;
pub mod conv;
#[cfg(feature = "cuda")]
mod cuda_norm;
#[cfg(feature = "cudnn")]
pub mod cudnn_conv;
pub mod device;
pub mod eval_ops;
pub mod fastconv;
mod fresh;
pub mod frozen_conv;
pub mod isa;
pub mod options;
pub mod prelu;
pub mod profile;

pub use batch_norm::{BatchNormParams, BatchNormPath};
pub use conv::conv2d;
pub use device::select_device;
pub use frozen_conv::{Epilogue, FrozenConv};
pub use isa::Isa;
pub use options::{ConvKernel, CudaPool, KernelOptions, NormKernel};
pub use profile::Profiler;

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
