//! `metrics.jsonl`: one JSON object per line, appended while training runs; the training
//! history that reports draw.
//!
//! Lines carry `"kind": "train"` (step, epoch, loss, accuracy, lr, images_per_sec,
//! elapsed_s) or `"kind": "val"` (step, epoch, accuracy, threshold). Each line is written
//! with one `write` call and flushed, so a killed run loses at most its last line, which the
//! reader then skips. On resume the records past the checkpoint's step are dropped, so the
//! file reads as one uninterrupted run.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MetricRecord {
    /// Training progress averaged over the last logging window.
    Train {
        /// Optimizer steps done.
        step: u64,
        /// Epoch (0-based).
        epoch: usize,
        /// Mean loss over the window.
        loss: f64,
        /// Top-1 training accuracy over the window.
        accuracy: f64,
        /// Learning rate of the last step.
        lr: f64,
        /// Training throughput over the window.
        images_per_sec: f64,
        /// Seconds since the (possibly resumed) run started, plus the time before resuming.
        elapsed_s: f64,
    },
    /// Pair-verification accuracy on the protocol's test pairs.
    Val {
        /// Optimizer steps done.
        step: u64,
        /// Epoch (0-based) just finished.
        epoch: usize,
        /// Verification accuracy (10-fold).
        accuracy: f64,
        /// Best global threshold on the cosine similarity.
        threshold: f64,
    },
}

impl MetricRecord {
    /// The step the record refers to.
    pub fn step(&self) -> u64 {
        match self {
            MetricRecord::Train { step, .. } | MetricRecord::Val { step, .. } => *step,
        }
    }
}

/// Parses `metrics.jsonl` text. A malformed line is an error naming it, except the last one:
/// that is what a killed or disk-full run leaves behind, and it is skipped.
fn parse(path: &Path, text: &str) -> Result<Vec<MetricRecord>> {
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let mut out = Vec::with_capacity(lines.len());
    for (k, (i, line)) in lines.iter().enumerate() {
        match serde_json::from_str(line) {
            Ok(r) => out.push(r),
            Err(e) if k + 1 == lines.len() => {
                tracing::warn!(
                    "{}:{}: skipping a half-written last line ({e})",
                    path.display(),
                    i + 1
                );
            }
            Err(e) => return Err(Error::parse(path, i + 1, e.to_string())),
        }
    }
    Ok(out)
}

/// Reads every complete record of a `metrics.jsonl`.
pub(super) fn read(path: &Path) -> Result<Vec<MetricRecord>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse(path, &text)
}

/// Appends records to a run's `metrics.jsonl`.
pub struct MetricsWriter {
    path: PathBuf,
    file: File,
}

impl MetricsWriter {
    /// Opens `path` for appending. `keep_until = None` starts a fresh file; `Some(step)`
    /// (resume) first rewrites it with the complete records up to `step`.
    pub fn open(path: &Path, keep_until: Option<u64>) -> Result<Self> {
        match keep_until {
            Some(step) if path.exists() => {
                let kept: String = read(path)?
                    .iter()
                    .filter(|r| r.step() <= step)
                    .map(|r| line(path, r))
                    .collect::<Result<_>>()?;
                super::write_atomic(path, kept.as_bytes())?;
            }
            Some(_) => {}
            None => {
                File::create(path).map_err(|e| Error::io(path, e))?;
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one record (one write, so a killed run keeps whole lines only).
    pub fn append(&mut self, record: &MetricRecord) -> Result<()> {
        let s = line(&self.path, record)?;
        self.file
            .write_all(s.as_bytes())
            .map_err(|e| Error::io(&self.path, e))
    }
}

fn line(path: &Path, record: &MetricRecord) -> Result<String> {
    let mut s = serde_json::to_string(record).map_err(|e| Error::format(path, e.to_string()))?;
    s.push('\n');
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::super::RunDir;
    use super::*;

    fn train(step: u64) -> MetricRecord {
        MetricRecord::Train {
            step,
            epoch: 0,
            loss: 1.5,
            accuracy: 0.25,
            lr: 0.1,
            images_per_sec: 10.0,
            elapsed_s: 1.0,
        }
    }

    fn val(step: u64) -> MetricRecord {
        MetricRecord::Val {
            step,
            epoch: 0,
            accuracy: 0.8,
            threshold: 0.3,
        }
    }

    #[test]
    fn round_trip_and_the_wire_format() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let records = vec![train(10), val(10), train(20)];
        let mut w = run.metrics_writer(None).unwrap();
        records.iter().for_each(|r| w.append(r).unwrap());
        drop(w);
        assert_eq!(run.metrics().unwrap(), records);
        let text = std::fs::read_to_string(run.metrics_path()).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["kind"], "train");
        assert_eq!(first["images_per_sec"], 10.0);
    }

    #[test]
    fn resume_keeps_records_up_to_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let mut w = run.metrics_writer(None).unwrap();
        [train(10), val(10), train(20)]
            .iter()
            .for_each(|r| w.append(r).unwrap());
        drop(w);
        let mut w = run.metrics_writer(Some(10)).unwrap();
        w.append(&train(30)).unwrap();
        assert_eq!(run.metrics().unwrap(), vec![train(10), val(10), train(30)]);
    }

    #[test]
    fn a_truncated_last_line_is_skipped_and_a_bad_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let full = format!(
            "{}{}",
            line(&run.metrics_path(), &train(10)).unwrap(),
            line(&run.metrics_path(), &val(10)).unwrap()
        );
        let cut = &full[..full.len() - 12];
        std::fs::write(run.metrics_path(), cut).unwrap();
        assert_eq!(run.metrics().unwrap(), vec![train(10)]);
        // Resuming over the torn line drops it, and appends start on a fresh line.
        let mut w = run.metrics_writer(Some(10)).unwrap();
        w.append(&train(20)).unwrap();
        assert_eq!(run.metrics().unwrap(), vec![train(10), train(20)]);

        std::fs::write(run.metrics_path(), format!("not json\n{full}")).unwrap();
        let e = run.metrics().unwrap_err().to_string();
        assert!(e.contains("metrics.jsonl:1"), "{e}");
    }
}
