//! Property tests: no `metrics.jsonl` makes the run reader panic. A run's file is appended line
//! by line and may be cut anywhere (kill -9, disk full) or edited by hand; the reader must give
//! the complete records or an error naming the file and line.

use arcface_eval::{MetricRecord, RunDir};
use proptest::prelude::*;

fn record() -> impl Strategy<Value = MetricRecord> {
    prop_oneof![
        (any::<u64>(), 0usize..100, -1e6f64..1e6, 0.0f64..1.0).prop_map(|(step, epoch, loss, accuracy)| {
            MetricRecord::Train { step, epoch, loss, accuracy, lr: 0.1, images_per_sec: 12.5, elapsed_s: 3.0 }
        }),
        (any::<u64>(), 0usize..100, 0.0f64..1.0, -1.0f64..1.0)
            .prop_map(|(step, epoch, accuracy, threshold)| MetricRecord::Val { step, epoch, accuracy, threshold }),
    ]
}

/// Valid lines, then damage: a cut, flipped bytes, an inserted line of arbitrary text.
fn jsonl() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(record(), 0..12),
        any::<prop::sample::Index>(),
        any::<bool>(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        prop::option::of(("\\PC{0,30}", any::<prop::sample::Index>())),
    )
        .prop_map(|(records, cut, do_cut, flips, insert)| {
            let mut lines: Vec<String> = records.iter().map(|r| serde_json::to_string(r).unwrap()).collect();
            if let Some((text, at)) = insert {
                let i = at.index(lines.len() + 1);
                lines.insert(i, text);
            }
            let mut bytes = lines.join("\n").into_bytes();
            for (at, v) in flips {
                if !bytes.is_empty() {
                    let i = at.index(bytes.len());
                    bytes[i] = v;
                }
            }
            if do_cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes
        })
}

fn check(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    std::fs::write(run.metrics_path(), bytes).unwrap();
    if let Err(e) = run.metrics() {
        assert!(e.to_string().contains("metrics.jsonl"), "{e}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        check(&bytes);
    }

    #[test]
    fn damaged_logs_never_panic(bytes in jsonl()) {
        check(&bytes);
    }

    #[test]
    fn an_intact_log_reads_back_whole(records in prop::collection::vec(record(), 1..12)) {
        let text: String = records.iter().map(|r| serde_json::to_string(r).unwrap() + "\n").collect();
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        std::fs::write(run.metrics_path(), text).unwrap();
        let back = run.metrics().unwrap();
        prop_assert_eq!(back.len(), records.len());
        for (a, b) in back.iter().zip(&records) {
            prop_assert_eq!(a.step(), b.step());
        }
    }
}
