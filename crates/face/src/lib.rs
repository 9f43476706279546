//! arcface-face: faces from photos, the way InsightFace prepares them for a recognition model.
//! [`mtcnn`] finds faces and their five landmarks (eyes, nose tip, mouth corners) as
//! facenet-pytorch's MTCNN does, from its published weights; [`align`] maps the landmarks onto
//! the ArcFace template and cuts the aligned 112x112 face, matching InsightFace's `norm_crop`
//! (skimage + OpenCV); [`photo`] decodes a photo upright (EXIF orientation applied).
#![warn(missing_docs)]

pub mod align;
pub mod finder;
pub mod mtcnn;
pub mod photo;

pub use align::{norm_crop, warp_affine, Similarity, ARCFACE_TEMPLATE};
pub use finder::{Choice, FaceFinder, Found, NoFace};
pub use mtcnn::{DetectOptions, Face, Mtcnn};
pub use photo::{decode_photo, load_photo, PhotoError};

/// What can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The landmarks do not define a transform (all at one point, or not finite).
    #[error("degenerate landmarks: {0}")]
    DegenerateLandmarks(String),
    /// The requested output size is unusable.
    #[error("invalid crop size {0} (expected 1..=4096)")]
    InvalidSize(u32),
    /// Detection settings that cannot run.
    #[error("invalid detection settings: {0}")]
    InvalidOptions(String),
    /// A weight file that is missing, unreadable or not the expected network.
    #[error("{}: {message}", path.display())]
    Weights {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
