//! The error type of arcface-report: drawing and writing failures name the file; reading
//! a run folder fails with arcface-eval's typed error.

use std::path::PathBuf;

/// Result alias for arcface-report.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong while plotting or writing a report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Drawing a plot failed.
    #[error("plot {}: {message}", path.display())]
    Plot {
        /// The output file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// A run folder could not be read.
    #[error(transparent)]
    Run(#[from] arcface_eval::Error),
    /// Nothing to report, or no run could be read.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// Wraps an I/O error with the file it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
