//! Errors of the backbone crate: weight files that cannot be read or do not fit the model,
//! and unknown device names. Each names the file it concerns.

use std::path::PathBuf;

/// A tensor whose shape in the file differs from the model's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeMismatch {
    /// InsightFace key of the tensor.
    pub name: String,
    /// Shape the model expects.
    pub expected: Vec<usize>,
    /// Shape found in the file.
    pub found: Vec<usize>,
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation or a read/write of `path` failed.
    #[error("{}: {source}", path.display())]
    File {
        /// The weight file.
        path: PathBuf,
        /// What candle reported.
        #[source]
        source: candle::Error,
    },
    /// The extension is neither `.safetensors` nor a PyTorch pickle (`.pth`, `.pt`, `.bin`).
    #[error("{}: unknown weight format (expected .safetensors, .pth, .pt or .bin)", path.display())]
    UnknownFormat {
        /// The weight file.
        path: PathBuf,
    },
    /// The file's tensors do not match the model's (strict loading).
    #[error("{}: weights do not match the model{}", path.display(), mismatch_details(missing, unexpected, wrong_shape))]
    Mismatch {
        /// The weight file.
        path: PathBuf,
        /// Keys the model needs that the file lacks.
        missing: Vec<String>,
        /// Keys in the file that the model does not have.
        unexpected: Vec<String>,
        /// Keys present in both with different shapes.
        wrong_shape: Vec<ShapeMismatch>,
    },
    /// A tensor of the file holds values no trained model has: an integer dtype, or NaN or
    /// infinite numbers (a damaged file).
    #[error("{}: tensor `{name}` {reason}; the file is damaged or not a model's weights", path.display())]
    BadValues {
        /// The weight file.
        path: PathBuf,
        /// The tensor's key.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Any other tensor error.
    #[error(transparent)]
    Candle(#[from] candle::Error),
}

fn mismatch_details(missing: &[String], unexpected: &[String], wrong: &[ShapeMismatch]) -> String {
    let mut s = String::new();
    if !missing.is_empty() {
        s += &format!("; missing {}: {}", missing.len(), missing.join(", "));
    }
    if !unexpected.is_empty() {
        s += &format!("; unexpected {}: {}", unexpected.len(), unexpected.join(", "));
    }
    if !wrong.is_empty() {
        let items: Vec<String> =
            wrong.iter().map(|m| format!("{} (model {:?}, file {:?})", m.name, m.expected, m.found)).collect();
        s += &format!("; wrong shape {}: {}", wrong.len(), items.join(", "));
    }
    s
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
