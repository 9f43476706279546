//! arcface-eval: face-verification evaluation. Pair metrics as InsightFace's
//! `verification.py` (k-fold accuracy, ROC, AUC, EER, TAR at FAR), embeddings with the flip
//! test, the pair scorer shared with training's validation, InsightFace `.bin` verification
//! sets, external score files, per-run evaluation, `verify`, `embed`, and [`RunDir`], the
//! typed owner of a run folder's files. Plots and reports are arcface-report's.
#![warn(missing_docs)]

pub mod bin;
pub mod embed;
pub mod embed_cmd;
pub mod error;
pub mod metrics;
pub mod model;
pub mod pairs;
pub mod photos;
pub mod run;
pub mod run_dir;
pub mod scores;
pub mod verify;

pub use bin::{read_bin, BinSet};
pub use embed::{embed_images, embed_tensor, l2_normalize, EmbedConfig};
pub use embed_cmd::{embed_command, EmbedOptions, EmbedResult};
pub use error::{Error, Result};
pub use metrics::{evaluate_scores, Metrics, MetricsOptions};
pub use pairs::{pair_folds, score_pairs};
pub use photos::{embed_photos, FaceInput, PhotoFace, Skipped};
pub use run::{eval_run, load_model, load_model_with, EvalOptions, EvalResult, ModelSource, PairSource};
pub use run_dir::{EvalReport, MetricRecord, MetricsWriter, ModelInfo, RunDir};
pub use scores::{read_scores_tsv, ScoreTable};
pub use verify::{verify, VerifyOptions, VerifyResult};

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
