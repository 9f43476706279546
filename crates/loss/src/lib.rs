//! arcface-loss: the normalized fully connected head of face recognition and its margins
//! (normalized softmax, ArcFace, CosFace, SphereFace, InsightFace's combined margin) with a
//! cross-entropy computed in f32. References: Deng et al., "ArcFace: Additive Angular Margin
//! Loss for Deep Face Recognition", CVPR 2019; InsightFace `recognition/arcface_torch`.
#![warn(missing_docs)]

pub mod angle;
pub mod error;
pub mod head;
pub mod init;
pub mod margin;

pub use error::LossError;
pub use head::{HeadConfig, HeadOutput, MarginHead, DEFAULT_SCALE};
pub use init::seeded_normal;
pub use margin::{apply_margin, check_labels, GradMode, Margin};

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
