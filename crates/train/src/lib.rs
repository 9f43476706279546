//! arcface-train: trains ArcFace-style face-recognition models with candle.
//!
//! The pieces candle lacks for this (SGD with momentum and weight decay, AdamW with PyTorch
//! semantics, InsightFace's poly schedule, gradient clipping, atomic resumable checkpoints)
//! plus the loop that ties arcface-data, arcface-backbone and arcface-loss together and
//! writes a run folder (`runs/<name>/`) as described in the workspace's DESIGN.md.
//! Reference: InsightFace `recognition/arcface_torch/train_v2.py`.
#![warn(missing_docs)]

pub mod bench;
pub mod checkpoint;
pub mod clip;
pub mod config;
pub mod error;
pub mod metrics;
mod fused_sgd;
pub mod optim;
pub mod precision;
pub mod run;
pub mod schedule;
pub mod signals;
pub mod step;
pub mod validate;

pub use checkpoint::{CheckpointMeta, Checkpointer};
pub use clip::clip_grad_norm;
pub use config::TrainConfig;
pub use error::{Result, TrainError};
pub use optim::{Optimizer, OptimizerConfig};
pub use run::{train, train_with_stop, RunOptions, TrainSummary};
pub use schedule::{Decay, LrSchedule};
pub use signals::StopFlag;

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
