//! arcface-eval: face-verification evaluation. Pair metrics as InsightFace's
//! `verification.py` (k-fold accuracy, ROC, AUC, EER, TAR at FAR), embeddings with the flip
//! test, InsightFace `.bin` verification sets, plots, per-run evaluation, `verify`, and an
//! HTML/markdown report across runs.
#![warn(missing_docs)]

pub mod bin;
pub mod embed;
pub mod embed_cmd;
pub mod error;
pub mod metrics;
pub mod model;
pub mod plots;
pub mod report;
pub mod run;
pub mod scores;
pub mod verify;

pub use bin::{read_bin, BinSet};
pub use embed::{embed_images, embed_tensor, EmbedConfig};
pub use embed_cmd::{embed_command, EmbedOptions, EmbedResult};
pub use error::{Error, Result};
pub use metrics::{evaluate_scores, Metrics, MetricsOptions};
pub use report::write_report;
pub use run::{
    eval_run, load_model, load_model_with, EvalOptions, EvalReport, EvalResult, ModelInfo, ModelSource, PairSource,
};
pub use scores::{read_scores_tsv, ScoreTable};
pub use verify::{verify, VerifyOptions, VerifyResult};
