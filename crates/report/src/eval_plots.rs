//! The plots of one evaluation, written beside its `eval.json`: the ROC curve and the
//! histogram of same and different pair scores with the chosen threshold, each as PNG and
//! SVG (`summary.md` links the PNGs).

use std::path::PathBuf;

use arcface_eval::EvalResult;

use crate::error::Result;
use crate::plots::{render, HistPlot, PlotTarget, RocPlot};

/// Draws `roc.{png,svg}` and `scores_hist.{png,svg}` into the result's output folder;
/// returns the files written.
pub fn write_eval_plots(result: &EvalResult) -> Result<Vec<PathBuf>> {
    let (report, t) = (&result.report, &result.scores);
    let what = if report.distance {
        "squared L2 distance"
    } else {
        "cosine similarity"
    };
    let mut files = Vec::new();
    for ext in ["png", "svg"] {
        let roc = result.out_dir.join(format!("roc.{ext}"));
        let title = format!("ROC - {} (AUC {:.4})", report.protocol, report.auc);
        let plot = RocPlot {
            title,
            curves: vec![("model".into(), &report.roc)],
        };
        render(&plot, (800, 600), PlotTarget::File(&roc))?;
        files.push(roc);
        let hist = result.out_dir.join(format!("scores_hist.{ext}"));
        let plot = HistPlot {
            title: format!("Pair scores - {}", report.protocol),
            scores: &t.scores,
            same: &t.same,
            threshold: Some(report.threshold),
            bins: 50,
            x_label: what.into(),
        };
        render(&plot, (800, 600), PlotTarget::File(&hist))?;
        files.push(hist);
    }
    Ok(files)
}
