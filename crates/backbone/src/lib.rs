//! arcface-backbone: InsightFace's IResNet-18/34/50/100 face-embedding backbones in candle,
//! with their initialisation, strict weight loading (InsightFace `backbone.pth` or our
//! safetensors, same keys) and parameter/MAC counts. The layers' arithmetic is
//! `arcface-kernels`, chosen by a [`KernelOptions`] value (the defaults when built with
//! [`IResNet::new`] or [`init_varmap`]).
//!
//! Reference: InsightFace `recognition/arcface_torch/backbones/iresnet.py`; Deng et al.,
//! "ArcFace", CVPR 2019.
//!
//! ```no_run
//! use arcface_backbone::{init_varmap, trainable_vars, Config};
//! use candle_nn::{ModuleT, VarMap};
//! # fn main() -> candle::Result<()> {
//! let device = candle::Device::Cpu;
//! let varmap = VarMap::new();
//! let model = init_varmap(&Config::ir50(), &varmap, &device, 42)?;
//! let x = candle::Tensor::zeros((2, 3, 112, 112), candle::DType::F32, &device)?;
//! let emb = model.forward_t(&x, false)?; // 2 x 512
//! let to_train = trainable_vars(&varmap); // not varmap.all_vars(): skips BN buffers
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod batch_norm;
pub mod config;
pub mod conv;
pub mod error;
pub mod init;
pub mod iresnet;
pub mod prelu;
mod pth;
pub mod weights;

/// The kernels the layers run on, and the typed options that choose them.
pub use arcface_kernels as kernels;
pub use arcface_kernels::{select_device, ConvKernel, CudaPool, KernelOptions, NormKernel, Profiler};
pub use config::{Config, MAX_INPUT_SIZE, MAX_PARAMS};
pub use error::{Error, Result};
pub use init::{init_varmap, init_varmap_with, trainable_vars, ParamKind};
pub use iresnet::{IBasicBlock, IResNet};
pub use weights::{load_model, load_model_with, load_weights, read_tensors, save_weights};

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
