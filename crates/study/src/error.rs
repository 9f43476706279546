//! Errors of the study: those of the crates it drives pass through typed, and its own name the
//! run folder or file concerned.

use std::path::PathBuf;

/// Everything that can stop a study.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// Training one of the runs failed (boxed: the training error is large).
    #[error(transparent)]
    Train(Box<arcface_train::TrainError>),
    /// Evaluating a run, or reading its folder, failed.
    #[error(transparent)]
    Eval(#[from] arcface_eval::Error),
    /// Drawing a figure or writing a report failed.
    #[error(transparent)]
    Report(#[from] arcface_report::Error),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle::Error),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A run or its data is not what the study needs (a missing checkpoint, an interrupted
    /// training, a head that does not fit its split, a missing LFW person).
    #[error("{0}")]
    Invalid(String),
}

impl StudyError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StudyError::Io { path: path.into(), source }
    }
}

impl From<arcface_train::TrainError> for StudyError {
    fn from(e: arcface_train::TrainError) -> Self {
        StudyError::Train(Box::new(e))
    }
}

impl From<std::fmt::Error> for StudyError {
    fn from(_: std::fmt::Error) -> Self {
        StudyError::Invalid("formatting the study page failed".into())
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, StudyError>;
