//! Score TSV files (`eval --scores`), then the metrics as eval computes them.
#![no_main]

use std::path::Path;

use arcface_eval::metrics::{evaluate_scores, MetricsOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(t) = arcface_eval::scores::parse_scores_tsv(text, Path::new("fuzz.tsv")) {
        let opts = MetricsOptions { num_folds: t.scores.len().clamp(2, 10), ..MetricsOptions::default() };
        let _ = evaluate_scores(&t.scores, &t.same, t.folds.as_deref(), &opts);
    }
});
