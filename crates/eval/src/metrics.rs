//! Verification metrics on pair scores, as InsightFace's `eval/verification.py`: k-fold
//! cross-validated accuracy (each fold uses the threshold that maximizes accuracy on the
//! other folds), the best global threshold, the ROC curve, AUC, EER and TAR at fixed FAR.
//!
//! Definitions (tested against scikit-learn in `tests/metrics_fixture.rs`):
//! - Threshold candidates are one value below the smallest score, every midpoint between
//!   consecutive distinct scores, and one value above the largest (so "all same" and "all
//!   different" are candidates). Ties in accuracy go to the lowest threshold, as `np.argmax`
//!   over InsightFace's ascending `np.arange` thresholds.
//! - Similarity scores predict "same" when `score > threshold`; distances when
//!   `distance < threshold` (`np.less`, as verification.py).
//! - The ROC has one point per distinct score plus (0, 0), as
//!   `sklearn.metrics.roc_curve(drop_intermediate=False)`; AUC is the trapezoid rule on it.
//! - EER is the FAR where the piecewise-linear ROC crosses FAR = 1 - TAR.
//! - TAR at FAR = x is the largest TAR among ROC points with FAR <= x (no interpolation: an
//!   operating point that a threshold actually reaches).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How the metrics are computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsOptions {
    /// Scores are distances (lower = same) instead of similarities (higher = same).
    pub distance: bool,
    /// Number of contiguous folds when no fold ids are given (InsightFace: 10).
    pub num_folds: usize,
    /// FAR values at which TAR is reported.
    pub far_targets: Vec<f64>,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        Self {
            distance: false,
            num_folds: 10,
            far_targets: vec![1e-3, 1e-2],
        }
    }
}

/// One cross-validation fold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldMetrics {
    /// The fold id (as given, or 0-based index of the contiguous split).
    pub fold: usize,
    /// Pairs in this (test) fold.
    pub num_pairs: usize,
    /// Threshold chosen on the other folds.
    pub threshold: f64,
    /// Accuracy of that threshold on the other folds.
    pub train_accuracy: f64,
    /// Accuracy of that threshold on this fold.
    pub accuracy: f64,
}

/// TAR at a target FAR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TarAtFar {
    /// The requested FAR.
    pub far_target: f64,
    /// Largest TAR among ROC points with FAR <= target.
    pub tar: f64,
    /// The FAR actually reached at that point.
    pub far: f64,
    /// The threshold of that point (pairs with score >= it, or distance <= it, are "same").
    pub threshold: f64,
}

/// ROC curve: parallel arrays, FAR and TAR non-decreasing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RocCurve {
    /// False accept rate per point.
    pub far: Vec<f64>,
    /// True accept rate per point.
    pub tar: Vec<f64>,
    /// Inclusive threshold per point; the first, (0, 0), uses max + 1 (distances: min - 1).
    pub thresholds: Vec<f64>,
}

/// All verification metrics for one set of scored pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Number of pairs.
    pub num_pairs: usize,
    /// Pairs of the same person.
    pub num_same: usize,
    /// Pairs of different people.
    pub num_different: usize,
    /// Whether scores were distances.
    pub distance: bool,
    /// Mean of the per-fold accuracies.
    pub accuracy_mean: f64,
    /// Population standard deviation of the per-fold accuracies (numpy's `np.std`).
    pub accuracy_std: f64,
    /// Per-fold results.
    pub folds: Vec<FoldMetrics>,
    /// The threshold maximizing accuracy over all pairs (what `verify` uses).
    pub threshold: f64,
    /// Accuracy over all pairs at `threshold` (optimistic: chosen on the same pairs).
    pub best_accuracy: f64,
    /// Area under the ROC curve.
    pub auc: f64,
    /// Equal error rate.
    pub eer: f64,
    /// TAR at each requested FAR.
    pub tar_at_far: Vec<TarAtFar>,
    /// The full ROC curve.
    pub roc: RocCurve,
}

/// Fold ids of a contiguous split in file order, as `sklearn.model_selection.KFold(k,
/// shuffle=False)`: the first `n % k` folds hold one pair more.
pub fn contiguous_folds(n: usize, k: usize) -> Vec<usize> {
    let k = k.max(1);
    let (base, extra) = (n / k, n % k);
    let mut out = Vec::with_capacity(n);
    for f in 0..k {
        let len = base + usize::from(f < extra);
        out.extend(std::iter::repeat_n(f, len));
    }
    out
}

/// Sorted distinct values; errors on NaN.
fn distinct(values: &[f64]) -> Result<Vec<f64>> {
    if values.iter().any(|v| !v.is_finite()) {
        return Err(Error::Invalid(
            "scores must be finite (found NaN or infinity)".into(),
        ));
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.dedup();
    Ok(v)
}

/// The candidate thresholds for sorted distinct values (see the module doc).
pub fn threshold_candidates(sorted_distinct: &[f64]) -> Vec<f64> {
    let (Some(first), Some(last)) = (sorted_distinct.first(), sorted_distinct.last()) else {
        return Vec::new();
    };
    let mut t = Vec::with_capacity(sorted_distinct.len() + 1);
    t.push(first - 1.0);
    t.extend(sorted_distinct.windows(2).map(|w| (w[0] + w[1]) / 2.0));
    t.push(last + 1.0);
    t
}

/// Accuracy of one threshold on a set of pairs.
pub fn accuracy_at(scores: &[f64], same: &[bool], threshold: f64, distance: bool) -> f64 {
    if scores.is_empty() {
        return 0.0;
    }
    let correct = scores
        .iter()
        .zip(same)
        .filter(|(&s, &y)| {
            (if distance {
                s < threshold
            } else {
                s > threshold
            }) == y
        })
        .count();
    correct as f64 / scores.len() as f64
}

/// Per-distinct-value counts of same and different pairs, for the threshold sweep.
struct Counts {
    same: Vec<u64>,
    diff: Vec<u64>,
}

impl Counts {
    fn new(d: usize) -> Self {
        Self {
            same: vec![0; d],
            diff: vec![0; d],
        }
    }

    /// Correct predictions for every candidate k in 0..=d (threshold between distinct
    /// values k-1 and k), with `other` subtracted (the held-out fold).
    fn correct_per_candidate(&self, other: Option<&Counts>, distance: bool) -> Vec<u64> {
        let d = self.same.len();
        let get = |v: &Vec<u64>, o: Option<&Vec<u64>>, j: usize| v[j] - o.map_or(0, |o| o[j]);
        let (mut same_below, mut diff_below) = (0u64, 0u64);
        let total_same: u64 = (0..d)
            .map(|j| get(&self.same, other.map(|o| &o.same), j))
            .sum();
        let total_diff: u64 = (0..d)
            .map(|j| get(&self.diff, other.map(|o| &o.diff), j))
            .sum();
        let mut out = Vec::with_capacity(d + 1);
        for k in 0..=d {
            // Similarity: "same" iff value index >= k; distance: iff index < k.
            out.push(if distance {
                same_below + (total_diff - diff_below)
            } else {
                (total_same - same_below) + diff_below
            });
            if k < d {
                same_below += get(&self.same, other.map(|o| &o.same), k);
                diff_below += get(&self.diff, other.map(|o| &o.diff), k);
            }
        }
        out
    }
}

/// First index of the maximum (ties go to the lowest threshold, like `np.argmax`).
fn argmax(values: &[u64]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// Computes every metric of the module doc. `folds` gives a fold id per pair (e.g. from
/// `pairs.txt`); without it, pairs are split into `opts.num_folds` contiguous folds.
pub fn evaluate_scores(
    scores: &[f64],
    same: &[bool],
    folds: Option<&[usize]>,
    opts: &MetricsOptions,
) -> Result<Metrics> {
    let n = scores.len();
    if same.len() != n {
        return Err(Error::Invalid(format!(
            "{n} scores but {} labels",
            same.len()
        )));
    }
    let num_same = same.iter().filter(|&&s| s).count();
    if num_same == 0 || num_same == n {
        return Err(Error::Invalid(format!(
            "need both same and different pairs ({num_same} same of {n})"
        )));
    }
    let fold_ids = match folds {
        Some(f) if f.len() != n => {
            return Err(Error::Invalid(format!(
                "{n} scores but {} fold ids",
                f.len()
            )))
        }
        Some(f) => f.to_vec(),
        None => {
            if opts.num_folds < 2 || n < opts.num_folds {
                return Err(Error::Invalid(format!(
                    "cannot split {n} pairs into {} folds",
                    opts.num_folds
                )));
            }
            contiguous_folds(n, opts.num_folds)
        }
    };
    let mut fold_list = fold_ids.clone();
    fold_list.sort_unstable();
    fold_list.dedup();
    if fold_list.len() < 2 {
        return Err(Error::Invalid("need at least two folds".into()));
    }

    let values = distinct(scores)?;
    let candidates = threshold_candidates(&values);
    let index: Vec<usize> = scores
        .iter()
        .map(|s| values.partition_point(|v| v < s))
        .collect();
    let d = values.len();
    let mut total = Counts::new(d);
    // Pairs grouped by fold; one fold's counts exist at a time, so memory stays O(pairs +
    // distinct scores) however many folds a score file names (one fold per pair of a 20000-line
    // file held 20000 x 20000 counters and aborted on allocation).
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); fold_list.len()];
    for i in 0..n {
        members[fold_list.partition_point(|&x| x < fold_ids[i])].push(i);
        let t = if same[i] { &mut total.same } else { &mut total.diff };
        t[index[i]] += 1;
    }

    let mut fold_metrics = Vec::with_capacity(fold_list.len());
    let mut counts = Counts::new(d);
    for (f, pairs) in fold_list.iter().zip(&members) {
        for &i in pairs {
            let c = if same[i] { &mut counts.same } else { &mut counts.diff };
            c[index[i]] += 1;
        }
        let train = total.correct_per_candidate(Some(&counts), opts.distance);
        let k = argmax(&train);
        let test = counts.correct_per_candidate(None, opts.distance);
        let test_n: u64 = counts.same.iter().chain(&counts.diff).sum();
        let train_n = n as u64 - test_n;
        fold_metrics.push(FoldMetrics {
            fold: *f,
            num_pairs: test_n as usize,
            threshold: candidates[k],
            train_accuracy: train[k] as f64 / train_n as f64,
            accuracy: test[k] as f64 / test_n as f64,
        });
        for &i in pairs {
            let c = if same[i] { &mut counts.same } else { &mut counts.diff };
            c[index[i]] = 0;
        }
    }
    let accs: Vec<f64> = fold_metrics.iter().map(|f| f.accuracy).collect();
    let mean = accs.iter().sum::<f64>() / accs.len() as f64;
    let var = accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / accs.len() as f64;

    let all = total.correct_per_candidate(None, opts.distance);
    let k = argmax(&all);

    let roc = roc_curve(&total, &values, opts.distance);
    let tar_at_far = opts
        .far_targets
        .iter()
        .map(|&t| tar_at_far(&roc, t))
        .collect();
    Ok(Metrics {
        num_pairs: n,
        num_same,
        num_different: n - num_same,
        distance: opts.distance,
        accuracy_mean: mean,
        accuracy_std: var.sqrt(),
        folds: fold_metrics,
        threshold: candidates[k],
        best_accuracy: all[k] as f64 / n as f64,
        auc: auc(&roc),
        eer: eer(&roc),
        tar_at_far,
        roc,
    })
}

/// ROC from per-distinct-value counts, from the strictest threshold to the loosest.
fn roc_curve(total: &Counts, values: &[f64], distance: bool) -> RocCurve {
    let pos: u64 = total.same.iter().sum();
    let neg: u64 = total.diff.iter().sum();
    let d = values.len();
    // Similarity: strictest = largest score; distance: smallest distance.
    let order: Vec<usize> = if distance {
        (0..d).collect()
    } else {
        (0..d).rev().collect()
    };
    let first = if distance {
        values[0] - 1.0
    } else {
        values[d - 1] + 1.0
    };
    let mut roc = RocCurve {
        far: vec![0.0],
        tar: vec![0.0],
        thresholds: vec![first],
    };
    let (mut tp, mut fp) = (0u64, 0u64);
    for j in order {
        tp += total.same[j];
        fp += total.diff[j];
        roc.far.push(fp as f64 / neg as f64);
        roc.tar.push(tp as f64 / pos as f64);
        roc.thresholds.push(values[j]);
    }
    roc
}

/// Trapezoid area under the ROC (equals `sklearn.metrics.roc_auc_score`, ties counting half).
pub fn auc(roc: &RocCurve) -> f64 {
    roc.far
        .windows(2)
        .zip(roc.tar.windows(2))
        .map(|(x, y)| (x[1] - x[0]) * (y[0] + y[1]) / 2.0)
        .sum()
}

/// FAR where the piecewise-linear ROC meets FAR = 1 - TAR.
pub fn eer(roc: &RocCurve) -> f64 {
    let g: Vec<f64> = roc
        .far
        .iter()
        .zip(&roc.tar)
        .map(|(f, t)| 1.0 - f - t)
        .collect();
    for i in 0..g.len().saturating_sub(1) {
        if g[i] >= 0.0 && g[i + 1] <= 0.0 {
            let t = if g[i] == g[i + 1] {
                0.0
            } else {
                g[i] / (g[i] - g[i + 1])
            };
            return roc.far[i] + t * (roc.far[i + 1] - roc.far[i]);
        }
    }
    // Unreachable for a curve from (0, 0) to (1, 1); keep a defined value anyway.
    f64::NAN
}

/// Largest TAR among ROC points with FAR <= `target` (see the module doc).
pub fn tar_at_far(roc: &RocCurve, target: f64) -> TarAtFar {
    // FAR and TAR never decrease along the curve, so the last admissible point is best.
    let i = roc.far.iter().rposition(|&f| f <= target).unwrap_or(0);
    TarAtFar {
        far_target: target,
        tar: roc.tar[i],
        far: roc.far[i],
        threshold: roc.thresholds[i],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kfold_sizes_match_sklearn() {
        // KFold(3).split(range(8)) -> test folds of sizes 3, 3, 2.
        assert_eq!(contiguous_folds(8, 3), vec![0, 0, 0, 1, 1, 1, 2, 2]);
        assert_eq!(contiguous_folds(4, 4), vec![0, 1, 2, 3]);
    }

    #[test]
    fn hand_computed_tiny_case() {
        // Scores 0.1(d) 0.4(s) 0.35(d) 0.8(s): sorted 0.1 d, 0.35 d, 0.4 s, 0.8 s.
        // ROC points: (0,0), (0,.5)@.8, (0,1)@.4, (.5,1)@.35, (1,1)@.1 -> AUC 1, EER 0.
        // Best threshold: midpoint between 0.35 and 0.4 = 0.375, accuracy 1.
        let s = [0.1, 0.4, 0.35, 0.8];
        let y = [false, true, false, true];
        let m =
            evaluate_scores(&s, &y, Some(&[0, 0, 1, 1][..]), &MetricsOptions::default()).unwrap();
        assert_eq!(m.roc.far, vec![0.0, 0.0, 0.0, 0.5, 1.0]);
        assert_eq!(m.roc.tar, vec![0.0, 0.5, 1.0, 1.0, 1.0]);
        assert!((m.auc - 1.0).abs() < 1e-12);
        assert_eq!(m.eer, 0.0);
        assert!((m.threshold - 0.375).abs() < 1e-12);
        assert_eq!(m.best_accuracy, 1.0);
        // Fold 0 = {0.1 d, 0.4 s}; trained on fold 1 = {0.35 d, 0.8 s}: accuracy 1 for
        // thresholds in [0.35, 0.8) -> lowest candidate is midpoint(0.35, 0.4) = 0.375,
        // which also separates fold 0.
        assert!((m.folds[0].threshold - 0.375).abs() < 1e-12);
        assert_eq!(m.folds[0].accuracy, 1.0);
        // Fold 1 trained on fold 0: lowest perfect candidate is midpoint(0.1, 0.35) = 0.225,
        // which on fold 1 calls 0.35 "same": accuracy 0.5.
        assert!((m.folds[1].threshold - 0.225).abs() < 1e-12);
        assert_eq!(m.folds[1].accuracy, 0.5);
        assert!((m.accuracy_mean - 0.75).abs() < 1e-12);
        assert!((m.accuracy_std - 0.25).abs() < 1e-12);
        // TAR@FAR=0.01: last point with FAR 0 has TAR 1 at threshold 0.4.
        assert_eq!(m.tar_at_far[1].tar, 1.0);
        assert_eq!(m.tar_at_far[1].threshold, 0.4);
    }

    #[test]
    fn ties_count_half_in_auc_and_eer_interpolates() {
        // One same and one different pair with equal scores: ROC (0,0) -> (1,1), AUC 0.5,
        // EER 0.5 (midway along the diagonal segment).
        let m = evaluate_scores(
            &[0.3, 0.3],
            &[true, false],
            Some(&[0, 1][..]),
            &MetricsOptions::default(),
        )
        .unwrap();
        assert_eq!(m.roc.far, vec![0.0, 1.0]);
        assert!((m.auc - 0.5).abs() < 1e-12);
        assert!((m.eer - 0.5).abs() < 1e-12);
    }

    #[test]
    fn distance_mode_flips_the_decision() {
        // Distances: same pairs are small. 0.2 s, 0.5 d -> threshold midpoint 0.35.
        let opts = MetricsOptions {
            distance: true,
            ..Default::default()
        };
        let m = evaluate_scores(
            &[0.2, 0.5, 0.1, 0.9],
            &[true, false, true, false],
            Some(&[0, 0, 1, 1][..]),
            &opts,
        )
        .unwrap();
        assert_eq!(m.best_accuracy, 1.0);
        assert!((m.threshold - 0.35).abs() < 1e-12);
        assert!((m.auc - 1.0).abs() < 1e-12);
        assert_eq!(accuracy_at(&[0.2, 0.5], &[true, false], 0.35, true), 1.0);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let o = MetricsOptions::default();
        assert!(evaluate_scores(&[0.1, 0.2], &[true, true], Some(&[0, 1][..]), &o).is_err());
        assert!(evaluate_scores(&[0.1, f64::NAN], &[true, false], Some(&[0, 1][..]), &o).is_err());
        assert!(evaluate_scores(&[0.1, 0.2], &[true, false], None, &o).is_err());
        assert!(evaluate_scores(&[0.1, 0.2], &[true, false], Some(&[0, 0][..]), &o).is_err());
        assert!(evaluate_scores(&[0.1], &[true, false], None, &o).is_err());
    }
}
