//! `eval/eval.json`: the numbers of one evaluation (accuracy, ROC, AUC, EER, TAR at FAR, the
//! best threshold), written by `eval_run` and read by `verify` (its threshold) and reports.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ModelInfo;
use crate::error::{Error, Result};
use crate::metrics::{FoldMetrics, Metrics, RocCurve, TarAtFar};

/// What `eval.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Protocol or input name.
    pub protocol: String,
    /// Number of pairs.
    pub num_pairs: usize,
    /// Flip test used.
    pub flip: bool,
    /// Scores are distances.
    pub distance: bool,
    /// Mean fold accuracy.
    pub accuracy_mean: f64,
    /// Population std of fold accuracies.
    pub accuracy_std: f64,
    /// Area under the ROC.
    pub auc: f64,
    /// Equal error rate.
    pub eer: f64,
    /// Best global threshold (cosine, or distance when `distance`).
    pub threshold: f64,
    /// Accuracy at that threshold on all pairs.
    pub best_accuracy: f64,
    /// TAR at FAR, keyed by the FAR as written (`"0.001"`).
    pub tar_at_far: std::collections::BTreeMap<String, f64>,
    /// TAR at FAR with the FAR and threshold actually reached.
    pub tar_at_far_points: Vec<TarAtFar>,
    /// Same-person pairs.
    pub num_same: usize,
    /// Different-person pairs.
    pub num_different: usize,
    /// Per-fold thresholds and accuracies.
    pub folds: Vec<FoldMetrics>,
    /// The ROC curve.
    pub roc: RocCurve,
    /// Model facts, when a model was evaluated.
    pub model: Option<ModelInfo>,
    /// Seconds spent embedding.
    pub embed_seconds: f64,
    /// Images embedded per second (0 for score files).
    pub images_per_sec: f64,
}

/// `eval.json` inside an evaluation output folder.
pub(super) fn path_in(dir: &Path) -> PathBuf {
    dir.join("eval.json")
}

impl EvalReport {
    /// The report of `metrics` computed on `protocol`'s pairs; `images` embedded in
    /// `embed_seconds` (0 for score files).
    pub fn from_metrics(
        protocol: String,
        metrics: Metrics,
        flip: bool,
        model: Option<ModelInfo>,
        embed_seconds: f64,
        images: usize,
    ) -> Self {
        Self {
            protocol,
            num_pairs: metrics.num_pairs,
            flip,
            distance: metrics.distance,
            accuracy_mean: metrics.accuracy_mean,
            accuracy_std: metrics.accuracy_std,
            auc: metrics.auc,
            eer: metrics.eer,
            threshold: metrics.threshold,
            best_accuracy: metrics.best_accuracy,
            tar_at_far: metrics
                .tar_at_far
                .iter()
                .map(|t| (format!("{}", t.far_target), t.tar))
                .collect(),
            tar_at_far_points: metrics.tar_at_far,
            num_same: metrics.num_same,
            num_different: metrics.num_different,
            folds: metrics.folds,
            roc: metrics.roc,
            model,
            embed_seconds,
            images_per_sec: if embed_seconds > 0.0 {
                images as f64 / embed_seconds
            } else {
                0.0
            },
        }
    }

    /// Reads an `eval.json`.
    pub fn read(path: &Path) -> Result<Self> {
        super::read_json(path)
    }

    /// Writes `eval.json` into `dir` (created if needed) atomically; returns its path.
    pub fn write_in(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = path_in(dir);
        super::write_json(&path, self)?;
        Ok(path)
    }

    /// The decision threshold as a cosine similarity: distance thresholds d convert with
    /// cos = 1 - d/2, since d = 2 - 2cos for unit vectors.
    pub fn cosine_threshold(&self) -> f64 {
        if self.distance {
            1.0 - self.threshold / 2.0
        } else {
            self.threshold
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{evaluate_scores, MetricsOptions};

    #[test]
    fn round_trip() {
        let scores = [0.9, 0.8, 0.3, 0.1, 0.7, 0.2];
        let same = [true, true, false, false, true, false];
        let opts = MetricsOptions {
            num_folds: 3,
            ..MetricsOptions::default()
        };
        let m = evaluate_scores(&scores, &same, None, &opts).unwrap();
        let report = EvalReport::from_metrics("dev".into(), m, true, None, 1.5, 4);
        let dir = tempfile::tempdir().unwrap();
        let run = super::super::RunDir::new(dir.path());
        run.write_eval_summary(&report).unwrap();
        let back = run.eval_summary().unwrap();
        assert_eq!(back, report);
        assert_eq!(back.cosine_threshold(), report.threshold);
    }
}
