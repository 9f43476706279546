//! Property tests: no score file makes `eval --scores` panic. Arbitrary text, and TSV-shaped
//! text (a header naming some of `same score fold a b`, rows of fields a hand-edited or cut
//! file holds), go through the parser and, when they parse, through the metrics.

use std::path::Path;

use arcface_eval::metrics::{evaluate_scores, MetricsOptions};
use arcface_eval::scores::parse_scores_tsv;
use proptest::prelude::*;

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1".to_string()),
        Just("0".to_string()),
        Just("True".to_string()),
        (-2.0f64..2.0).prop_map(|v| v.to_string()),
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("-0".to_string()),
        Just("1e309".to_string()),
        (0usize..3).prop_map(|n| n.to_string()),
        (0usize..12).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just(String::new()),
        "\\PC{0,5}",
    ]
}

fn tsv() -> impl Strategy<Value = String> {
    let header = prop::sample::subsequence(vec!["a", "b", "same", "score", "fold", "x"], 0..=6).prop_shuffle();
    header.prop_flat_map(|cols| {
        // Rows mostly as wide as the header, so parsing goes past the field count.
        let width = prop_oneof![4 => Just(cols.len()), 1 => 0..8usize];
        let row = width.prop_flat_map(|w| prop::collection::vec(field(), w)).prop_map(|f| f.join("\t"));
        (Just(cols.join("\t")), prop::collection::vec(row, 0..40))
    })
    .prop_map(|(h, rows)| std::iter::once(h).chain(rows).collect::<Vec<_>>().join("\n"))
}

fn check(text: &str) {
    let path = Path::new("hostile.tsv");
    match parse_scores_tsv(text, path) {
        Ok(t) => {
            assert_eq!(t.same.len(), t.scores.len());
            assert!(t.scores.iter().all(|s| s.is_finite()));
            // What eval_run does with a parsed file.
            let opts = MetricsOptions { num_folds: t.scores.len().clamp(2, 10), ..MetricsOptions::default() };
            if let Ok(m) = evaluate_scores(&t.scores, &t.same, t.folds.as_deref(), &opts) {
                assert!((0.0..=1.0).contains(&m.accuracy_mean), "{}", m.accuracy_mean);
            }
        }
        Err(e) => assert!(e.to_string().contains("hostile.tsv"), "{e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC*") {
        check(&text);
    }

    #[test]
    fn tsv_shaped_text_never_panics(text in tsv()) {
        check(&text);
    }
}

/// Found by hand: a score file giving every pair its own fold made the metrics hold one
/// counter array per fold (a 20000-line file: 20000 x 20000 counters, 6.4 GB; `eval --scores`
/// aborted on allocation under a 4 GB limit). One fold's counters exist at a time now; this
/// checks the per-fold answers on such a file (the memory was checked with `ulimit -v`).
#[test]
fn a_fold_per_pair_is_scored_fold_by_fold() {
    let n = 4_000;
    let text: String = std::iter::once("same\tscore\tfold\n".to_string())
        .chain((0..n).map(|i| format!("{}\t{}\t{i}\n", i % 2, (i as f64 * 0.618_033_988_7).fract())))
        .collect();
    let t = parse_scores_tsv(&text, Path::new("folds.tsv")).unwrap();
    let m = evaluate_scores(&t.scores, &t.same, t.folds.as_deref(), &MetricsOptions::default()).unwrap();
    assert_eq!(m.folds.len(), n);
    assert!(m.folds.iter().all(|f| f.num_pairs == 1));
}
