//! Errors of the training library.
//!
//! Every function of the crate, the run driver included, returns [`TrainError`]; the errors of
//! the crates it builds on pass through typed (`#[from]`), and each names the file it concerns.

use std::path::PathBuf;

/// Everything that can go wrong inside arcface-train.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle::Error),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A TOML configuration could not be parsed.
    #[error("{path}:{line}: {msg}")]
    ConfigParse {
        /// The configuration file.
        path: PathBuf,
        /// 1-based line of the problem (0 when unknown).
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// A configuration parsed but holds an invalid value.
    #[error("{path}:{line}: invalid `{key}`: {msg}")]
    ConfigInvalid {
        /// The configuration file (or `<memory>`).
        path: PathBuf,
        /// 1-based line of the key (0 when unknown).
        line: usize,
        /// Dotted key, e.g. `optim.lr`.
        key: String,
        /// What is wrong.
        msg: String,
    },
    /// A named preset does not exist.
    #[error("unknown preset `{name}`; available: {available} (or pass a .toml file)")]
    UnknownPreset {
        /// The requested name.
        name: String,
        /// Comma-separated list of presets found.
        available: String,
    },
    /// A checkpoint does not fit the model built from the configuration.
    #[error("checkpoint {path} does not fit the configuration:\n  {}", mismatches.join("\n  "))]
    CheckpointMismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// One line per missing, unexpected or misshapen tensor.
        mismatches: Vec<String>,
    },
    /// A checkpoint file is unreadable or malformed.
    #[error("checkpoint {path}: {msg}")]
    CheckpointFormat {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// The loss became NaN or infinite.
    #[error("non-finite loss ({loss}) at step {step} (epoch {epoch}); {kept}")]
    NonFiniteLoss {
        /// Global optimizer step (1-based) whose loss was non-finite.
        step: u64,
        /// Epoch (0-based) of that step.
        epoch: usize,
        /// The offending value.
        loss: f32,
        /// Which checkpoint is left to resume from, said as it is (none may exist yet).
        kept: String,
    },
    /// Optimizer state could not be restored.
    #[error("optimizer state: {0}")]
    OptimizerState(String),
    /// A run-folder file (model.json, metrics.jsonl) could not be written or read.
    #[error(transparent)]
    RunDir(#[from] arcface_eval::Error),
    /// The data could not be read (LFW, protocol files, images, the cache).
    #[error(transparent)]
    Data(#[from] arcface_data::DataError),
    /// The backbone's weights could not be written or read.
    #[error(transparent)]
    Backbone(#[from] arcface_backbone::Error),
    /// The run cannot start as asked: too few identities or images for a batch, `--resume`
    /// without a checkpoint, or a fresh run over existing checkpoints.
    #[error("{0}")]
    Setup(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, TrainError>;

impl TrainError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            source,
        }
    }
}
