//! Metrics against independently computed values: `fixtures/scores.tsv` and
//! `fixtures/scores_expected.json` come from `fixtures/make_scores_fixture.py` (numpy,
//! scikit-learn's KFold, roc_curve, auc and roc_auc_score; fold thresholds by brute force).

use std::path::Path;

use arcface_eval::metrics::{evaluate_scores, Metrics, MetricsOptions};
use arcface_eval::scores::read_scores_tsv;
use serde_json::Value;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-9, "{what}: rust {a} vs python {b}");
}

fn check(m: &Metrics, e: &Value, with_roc: bool) {
    close(
        m.accuracy_mean,
        e["accuracy_mean"].as_f64().unwrap(),
        "accuracy_mean",
    );
    close(
        m.accuracy_std,
        e["accuracy_std"].as_f64().unwrap(),
        "accuracy_std",
    );
    close(m.threshold, e["threshold"].as_f64().unwrap(), "threshold");
    close(
        m.best_accuracy,
        e["best_accuracy"].as_f64().unwrap(),
        "best_accuracy",
    );
    let folds = e["folds"].as_array().unwrap();
    assert_eq!(m.folds.len(), folds.len());
    for (f, ef) in m.folds.iter().zip(folds) {
        close(
            f.threshold,
            ef["threshold"].as_f64().unwrap(),
            "fold threshold",
        );
        close(
            f.accuracy,
            ef["accuracy"].as_f64().unwrap(),
            "fold accuracy",
        );
        close(
            f.train_accuracy,
            ef["train_accuracy"].as_f64().unwrap(),
            "fold train accuracy",
        );
        assert_eq!(f.num_pairs as u64, ef["num_pairs"].as_u64().unwrap());
    }
    if with_roc {
        close(m.auc, e["auc"].as_f64().unwrap(), "auc");
        close(m.eer, e["eer"].as_f64().unwrap(), "eer");
        assert_eq!(m.roc.far.len() as u64, e["roc_len"].as_u64().unwrap());
        for (a, b) in m.roc.far.iter().zip(e["roc_far"].as_array().unwrap()) {
            close(*a, b.as_f64().unwrap(), "roc far");
        }
        for (a, b) in m.roc.tar.iter().zip(e["roc_tar"].as_array().unwrap()) {
            close(*a, b.as_f64().unwrap(), "roc tar");
        }
        for t in &m.tar_at_far {
            let key = format!("{}", t.far_target);
            close(
                t.tar,
                e["tar_at_far"][&key].as_f64().unwrap(),
                &format!("tar@far {key}"),
            );
            assert!(t.far <= t.far_target);
        }
    }
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixture("scores_expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn opts() -> MetricsOptions {
    MetricsOptions {
        far_targets: vec![0.001, 0.01, 0.1],
        ..Default::default()
    }
}

#[test]
fn given_folds_match_sklearn() {
    let t = read_scores_tsv(&fixture("scores.tsv")).unwrap();
    assert_eq!(t.scores.len(), 400);
    let m = evaluate_scores(&t.scores, &t.same, t.folds.as_deref(), &opts()).unwrap();
    check(&m, &expected()["given_folds"], true);
}

#[test]
fn contiguous_kfold_matches_sklearn() {
    let t = read_scores_tsv(&fixture("scores.tsv")).unwrap();
    let m = evaluate_scores(&t.scores, &t.same, None, &opts()).unwrap();
    check(&m, &expected()["kfold"], false);
    // 397 pairs: KFold's first seven folds have 40 pairs, the last three 39.
    let m = evaluate_scores(&t.scores[..397], &t.same[..397], None, &opts()).unwrap();
    check(&m, &expected()["kfold_397"], true);
}

#[test]
fn distances_match_verification_py() {
    let t = read_scores_tsv(&fixture("scores.tsv")).unwrap();
    let dist: Vec<f64> = t.scores.iter().map(|s| 2.0 - 2.0 * s).collect();
    let o = MetricsOptions {
        distance: true,
        ..opts()
    };
    let m = evaluate_scores(&dist, &t.same, t.folds.as_deref(), &o).unwrap();
    check(&m, &expected()["distance_given_folds"], true);
}
