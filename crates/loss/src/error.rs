//! Errors of the margin head: bad configurations and bad inputs (labels out of range, empty
//! batches, mismatched shapes). They travel inside `candle::Error::Wrapped` because the
//! public API returns `candle::Result`, like every candle layer (its message is kept). Callers
//! that want the typed value call `MarginHead::check` or `Margin::validate` first.

use candle::DType;

/// What went wrong in a margin or a head.
#[derive(Debug, thiserror::Error)]
pub enum LossError {
    /// A configuration value is out of its valid range.
    #[error("invalid head configuration: {0}")]
    InvalidConfig(String),
    /// The batch holds no sample.
    #[error("empty batch: the head needs at least one embedding")]
    EmptyBatch,
    /// Labels must be `u32` class indices.
    #[error("labels must be u32, got {0:?}")]
    LabelDType(DType),
    /// A label is not a valid class index.
    #[error("label {label} at batch row {row} is out of range: the head has {num_classes} classes")]
    LabelOutOfRange {
        /// Batch row of the first bad label.
        row: usize,
        /// The offending label.
        label: u32,
        /// Number of classes of the head.
        num_classes: usize,
    },
    /// A tensor has the wrong shape.
    #[error("shape mismatch for {what}: expected {expected}, got {got:?}")]
    Shape {
        /// Which tensor.
        what: &'static str,
        /// The expected shape, in words.
        expected: String,
        /// The shape received.
        got: Vec<usize>,
    },
}

impl From<LossError> for candle::Error {
    fn from(e: LossError) -> Self {
        candle::Error::wrap(e)
    }
}
