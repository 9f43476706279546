//! arcface-face: faces from photos, the way InsightFace prepares them for a recognition model.
//! Today: 5-point alignment ([`align`]): the similarity transform from a face's landmarks
//! (eyes, nose tip, mouth corners) to the ArcFace template, and the warp that cuts the aligned
//! 112x112 face, matching InsightFace's `norm_crop` (skimage + OpenCV) pixel for pixel.
//! Detection (MTCNN) is to come in this crate.
#![warn(missing_docs)]

pub mod align;

pub use align::{norm_crop, warp_affine, Similarity, ARCFACE_TEMPLATE};

/// What can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The landmarks do not define a transform (all at one point, or not finite).
    #[error("degenerate landmarks: {0}")]
    DegenerateLandmarks(String),
    /// The requested output size is unusable.
    #[error("invalid crop size {0} (expected 1..=4096)")]
    InvalidSize(u32),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
