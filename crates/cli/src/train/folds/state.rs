//! `summary.json` of a multi-fold View 2 run: the recipe the parent folder was started with,
//! the finished folds' numbers, the fold in progress, and the mean +- std over the finished
//! folds. The one type that reads and writes it; written atomically (arcface-eval's
//! `write_atomic`) after every change, so a killed run leaves the previous state, never a
//! torn file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use arcface_report::folds::mean_std;
use arcface_report::FoldRow;
use serde::{Deserialize, Serialize};

/// The marker in `kind` that tells a multi-fold parent from anything else.
pub const KIND: &str = "lfw-view2-folds";

/// The file name inside the parent folder.
pub const FILE: &str = "summary.json";

/// The sub-run folder of fold `k` inside the parent.
pub fn fold_dir(parent: &Path, fold: usize) -> PathBuf {
    parent.join(format!("fold-{fold}"))
}

/// One finished (trained and evaluated) fold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldResult {
    /// The held-out fold.
    pub fold: usize,
    /// Its sub-run folder, relative to the parent (`fold-K`).
    pub run: String,
    /// Accuracy on the fold's pairs (eval's `accuracy_mean` of `view2:K`).
    pub accuracy: f64,
    /// Std over eval's ten threshold splits inside the fold.
    pub accuracy_std_within: f64,
    /// Area under the fold's ROC.
    pub auc: f64,
    /// Equal error rate.
    pub eer: f64,
    /// Best global threshold on the fold's pairs.
    pub threshold: f64,
    /// Test pairs of the fold.
    pub num_pairs: usize,
    /// Training images (the people of the other folds).
    pub train_images: usize,
    /// Training identities.
    pub train_identities: usize,
    /// Optimizer steps of the fold's training (0 when only re-evaluated).
    pub steps: u64,
}

/// Mean and population std of one number over the finished folds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    /// Mean over the folds.
    pub mean: f64,
    /// Population standard deviation over the folds.
    pub std: f64,
}

impl MeanStd {
    fn of(values: &[f64]) -> Self {
        let (mean, std) = mean_std(values);
        Self { mean, std }
    }
}

/// The aggregate over the finished folds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// Number of finished folds.
    pub folds: usize,
    /// Fold accuracies.
    pub accuracy: MeanStd,
    /// Fold AUCs.
    pub auc: MeanStd,
    /// Fold EERs.
    pub eer: MeanStd,
}

/// What `summary.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldsState {
    /// Always [`KIND`].
    pub kind: String,
    /// The config's name.
    pub name: String,
    /// The resolved config (flags applied) as TOML, with `protocol = "view2:0"`: each fold's
    /// sub-run holds the same recipe with its own fold.
    pub recipe: String,
    /// The folds the last command asked for.
    pub requested: Vec<usize>,
    /// The fold being trained or evaluated, if the last command did not finish it.
    pub running: Option<usize>,
    /// Finished folds, in fold order.
    pub folds: Vec<FoldResult>,
    /// Mean +- std over `folds` (absent before the first fold finishes).
    pub summary: Option<Aggregate>,
}

impl FoldsState {
    /// A fresh state for `recipe`.
    pub fn new(name: &str, recipe: String) -> Self {
        Self {
            kind: KIND.into(),
            name: name.into(),
            recipe,
            requested: Vec::new(),
            running: None,
            folds: Vec::new(),
            summary: None,
        }
    }

    /// The path of the state file in `parent`.
    pub fn path(parent: &Path) -> PathBuf {
        parent.join(FILE)
    }

    /// Whether `dir` is a multi-fold parent (holds a `summary.json` of this kind).
    pub fn is_parent(dir: &Path) -> bool {
        Self::read(dir).is_ok()
    }

    /// Reads the state of `parent`.
    pub fn read(parent: &Path) -> anyhow::Result<Self> {
        let path = Self::path(parent);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let state: Self =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if state.kind != KIND {
            bail!(
                "{}: not the summary of a View 2 multi-fold run (kind {:?})",
                path.display(),
                state.kind
            );
        }
        Ok(state)
    }

    /// Writes the state into `parent` atomically.
    pub fn write(&self, parent: &Path) -> anyhow::Result<()> {
        let path = Self::path(parent);
        let bytes = serde_json::to_vec_pretty(self)?;
        arcface_eval::run_dir::write_atomic(&path, &bytes)?;
        Ok(())
    }

    /// The finished fold `k`, if any.
    pub fn done(&self, fold: usize) -> Option<&FoldResult> {
        self.folds.iter().find(|f| f.fold == fold)
    }

    /// Records a finished fold (replacing an earlier result) and updates the aggregate.
    pub fn record(&mut self, result: FoldResult) {
        self.folds.retain(|f| f.fold != result.fold);
        self.folds.push(result);
        self.folds.sort_by_key(|f| f.fold);
        if self.running.is_some_and(|r| self.done(r).is_some()) {
            self.running = None;
        }
        let col =
            |f: fn(&FoldResult) -> f64| MeanStd::of(&self.folds.iter().map(f).collect::<Vec<_>>());
        self.summary = Some(Aggregate {
            folds: self.folds.len(),
            accuracy: col(|f| f.accuracy),
            auc: col(|f| f.auc),
            eer: col(|f| f.eer),
        });
    }

    /// Requested folds not finished yet.
    pub fn pending(&self) -> Vec<usize> {
        self.requested
            .iter()
            .copied()
            .filter(|&k| self.done(k).is_none())
            .collect()
    }

    /// The report's rows of the finished folds.
    pub fn rows(&self, parent: &Path) -> Vec<FoldRow> {
        self.folds
            .iter()
            .map(|f| FoldRow {
                fold: f.fold,
                run_dir: parent.join(&f.run),
                accuracy: f.accuracy,
                auc: f.auc,
                eer: f.eer,
                threshold: f.threshold,
                train_images: f.train_images,
                train_identities: f.train_identities,
            })
            .collect()
    }
}

/// The first line where two recipes differ, as `(ours, theirs)` (`<none>` past an end).
pub fn first_difference(ours: &str, theirs: &str) -> Option<(String, String)> {
    let (mut a, mut b) = (ours.lines(), theirs.lines());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return None,
            (x, y) if x == y => continue,
            (x, y) => {
                let show =
                    |l: Option<&str>| l.map_or("<none>".to_string(), |l| l.trim().to_string());
                return Some((show(x), show(y)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(fold: usize, accuracy: f64) -> FoldResult {
        FoldResult {
            fold,
            run: format!("fold-{fold}"),
            accuracy,
            accuracy_std_within: 0.0,
            auc: 0.5 + accuracy / 2.0,
            eer: 1.0 - accuracy,
            threshold: 0.2,
            num_pairs: 4,
            train_images: 7,
            train_identities: 3,
            steps: 2,
        }
    }

    #[test]
    fn the_aggregate_follows_the_recorded_folds() {
        let mut s = FoldsState::new("t", "x".into());
        s.requested = vec![2, 0, 5];
        s.running = Some(2);
        s.record(result(2, 0.75));
        assert_eq!(s.running, None);
        s.record(result(0, 0.5));
        s.record(result(0, 0.25)); // a re-evaluation replaces the old numbers
        assert_eq!(
            s.folds.iter().map(|f| f.fold).collect::<Vec<_>>(),
            vec![0, 2]
        );
        let agg = s.summary.unwrap();
        assert_eq!(agg.folds, 2);
        assert_eq!(
            agg.accuracy,
            MeanStd {
                mean: 0.5,
                std: 0.25
            }
        );
        assert_eq!(s.pending(), vec![5]);
    }

    #[test]
    fn round_trip_and_kind_check() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FoldsState::new("t", "a = 1\n".into());
        s.record(result(1, 0.9));
        s.write(dir.path()).unwrap();
        assert_eq!(FoldsState::read(dir.path()).unwrap(), s);
        assert!(FoldsState::is_parent(dir.path()));
        std::fs::write(FoldsState::path(dir.path()), r#"{"kind":"other"}"#).unwrap();
        assert!(!FoldsState::is_parent(dir.path()));
    }

    #[test]
    fn first_difference_names_the_lines() {
        assert_eq!(first_difference("a\nb = 1\n", "a\nb = 1\n"), None);
        assert_eq!(
            first_difference("a\nb = 1\n", "a\nb = 2\n"),
            Some(("b = 1".into(), "b = 2".into()))
        );
        assert_eq!(
            first_difference("a\n", "a\nc\n"),
            Some(("<none>".into(), "c".into()))
        );
    }
}
