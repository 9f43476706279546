//! The error type of arcface-eval: every failure a caller can act on, naming the file (and
//! the line, for text inputs) it came from; the other crates' errors are kept typed.

use std::path::PathBuf;

/// Result alias for arcface-eval.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong while evaluating, embedding or reading a run folder.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A text input (TSV, pairs list, metrics.jsonl) is malformed at a given line.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A file is malformed as a whole (bad JSON, corrupt pickle, wrong .npy header).
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A photo in which no face could be used.
    #[error("{}: {reason}", path.display())]
    NoFace {
        /// The photo.
        path: PathBuf,
        /// Why (none found, fewer faces than `--face N` asked for).
        reason: String,
    },
    /// The inputs to a metric or a command do not make sense (empty, one class only, ...).
    #[error("{0}")]
    Invalid(String),
    /// A tensor operation failed.
    #[error("candle: {0}")]
    Candle(#[from] candle::Error),
    /// The data crate failed (image decoding, protocol files).
    #[error(transparent)]
    Data(#[from] arcface_data::DataError),
    /// The backbone crate failed (weights, config).
    #[error(transparent)]
    Backbone(#[from] arcface_backbone::Error),
}

impl Error {
    /// Wraps an I/O error with the file it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether the error is the photo's own (unreadable, not an image, no face), which a
    /// command over many photos reports and skips rather than stopping for.
    pub fn is_bad_photo(&self) -> bool {
        matches!(
            self,
            Error::NoFace { .. } | Error::Format { .. } | Error::Io { .. } | Error::Data(arcface_data::DataError::Decode { .. })
        )
    }

    /// A whole-file format error.
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            message: message.into(),
        }
    }

    /// A line-level parse error.
    pub fn parse(path: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        Error::Parse {
            path: path.into(),
            line,
            message: message.into(),
        }
    }
}
