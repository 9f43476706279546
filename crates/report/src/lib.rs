//! arcface-report: the pictures and pages made from run folders. Plots (plotters with a
//! bundled font: ROC, score histograms, training curves) of one evaluation, and the
//! self-contained HTML + markdown report across runs. It reads runs only through
//! arcface-eval's [`arcface_eval::RunDir`], and is kept out of arcface-eval so that training,
//! which needs eval's metrics, never builds plotters or HTML.
#![warn(missing_docs)]

pub mod error;
pub mod eval_plots;
pub mod folds;
pub mod plots;
pub mod report;

pub use error::{Error, Result};
pub use eval_plots::write_eval_plots;
pub use folds::{write_folds_report, FoldRow, FoldsPage};
pub use report::{read_run, write_report, RunSummary};
