//! The crate's one error type. Every variant names the file (and, for text formats, the
//! 1-based line) it concerns, so a user can go straight to the offending input.

use std::path::PathBuf;

/// Result alias used throughout arcface-data.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Everything that can go wrong while reading, checking or preparing face data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// An operating-system error while touching `path`.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A malformed line in a protocol or list file.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// The text file.
        path: PathBuf,
        /// 1-based line number (0 when the problem is the file as a whole).
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// A protocol file names an image that is not on disk.
    #[error("{}:{line}: image {} does not exist", protocol.display(), image.display())]
    MissingImage {
        /// The protocol file that names the image.
        protocol: PathBuf,
        /// 1-based line in that file.
        line: usize,
        /// The expected image path.
        image: PathBuf,
    },
    /// Training and test sets share an identity, which would leak test faces into training.
    #[error("identity {name} is both in the training people and in the test pairs of {}", protocol.display())]
    IdentityOverlap {
        /// The shared identity.
        name: String,
        /// The pairs file it was found in.
        protocol: PathBuf,
    },
    /// A folder that should hold data does not have the expected layout.
    #[error("{}: {message}", path.display())]
    Layout {
        /// The folder.
        path: PathBuf,
        /// What is missing or wrong.
        message: String,
    },
    /// An image could not be decoded (corrupt, truncated, unsupported).
    #[error("{origin}: cannot decode image: {message}")]
    Decode {
        /// Where the bytes came from (a path, or a description such as `bin[12]`).
        origin: String,
        /// The decoder's explanation.
        message: String,
    },
    /// A configuration value is unusable (crop outside the image, zero batch size, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The preprocessed-image cache is inconsistent with what was asked for.
    #[error("cache {}: {message}", path.display())]
    Cache {
        /// The cache file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle::Error),
}

impl DataError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io { path: path.into(), source }
    }

    /// A parse error at `path:line`.
    pub fn parse(path: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        DataError::Parse { path: path.into(), line, message: message.into() }
    }
}
