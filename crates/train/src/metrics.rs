//! The run's logs: `metrics.jsonl` (one JSON object per line, the contract other tools read)
//! and `train.log` (human-readable lines, also echoed to the terminal when no progress bar
//! is shown).
//!
//! `metrics.jsonl` lines carry `"kind": "train"` (step, epoch, loss, accuracy, lr,
//! images_per_sec, elapsed_s) or `"kind": "val"` (step, epoch, accuracy, threshold). On resume
//! lines past the checkpoint's step are dropped, so the file reads as one uninterrupted run.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MetricsLine {
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

impl MetricsLine {
    /// The step the line refers to.
    pub fn step(&self) -> u64 {
        match self {
            MetricsLine::Train { step, .. } | MetricsLine::Val { step, .. } => *step,
        }
    }
}

/// Appends to `metrics.jsonl` and `train.log`.
pub struct RunLog {
    metrics_path: PathBuf,
    metrics: File,
    log: File,
    echo: bool,
}

impl RunLog {
    /// Opens both files in `run_dir` for appending. With `keep_until = Some(step)` (resume),
    /// metrics lines after `step` are removed first. `echo` copies log lines to stderr.
    pub fn open(run_dir: &Path, keep_until: Option<u64>, echo: bool) -> Result<Self> {
        let metrics_path = run_dir.join("metrics.jsonl");
        match keep_until {
            Some(step) if metrics_path.exists() => truncate_after(&metrics_path, step)?,
            None => {
                File::create(&metrics_path).map_err(|e| TrainError::io(&metrics_path, e))?;
            }
            _ => {}
        }
        let open = |p: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| TrainError::io(p, e))
        };
        let metrics = open(&metrics_path)?;
        let log_path = run_dir.join("train.log");
        if keep_until.is_none() {
            File::create(&log_path).map_err(|e| TrainError::io(&log_path, e))?;
        }
        let log = open(&log_path)?;
        Ok(Self {
            metrics_path,
            metrics,
            log,
            echo,
        })
    }

    /// Appends one metrics line (flushed, so a killed run keeps it).
    pub fn metrics(&mut self, line: &MetricsLine) -> Result<()> {
        let mut s = serde_json::to_string(line).map_err(|e| TrainError::CheckpointFormat {
            path: self.metrics_path.clone(),
            msg: e.to_string(),
        })?;
        s.push('\n');
        self.metrics
            .write_all(s.as_bytes())
            .map_err(|e| TrainError::io(&self.metrics_path, e))
    }

    /// Appends a line to `train.log` only (the progress bar shows it on the terminal).
    pub fn info_file_only(&mut self, msg: &str) {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let _ = writeln!(self.log, "[{secs}] {msg}");
    }

    /// Appends a human-readable line to `train.log` (and stderr when echoing).
    pub fn info(&mut self, msg: &str) {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        // Logging must never stop training; a full disk shows up at the next checkpoint.
        let _ = writeln!(self.log, "[{secs}] {msg}");
        // Plain lines only when no progress bar owns the terminal (a tracing echo here would
        // print every line twice, and draw over the bar).
        if self.echo {
            eprintln!("{msg}");
        }
    }
}

/// Reads every line of a `metrics.jsonl`.
pub fn read_metrics(path: &Path) -> Result<Vec<MetricsLine>> {
    let f = File::open(path).map_err(|e| TrainError::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| TrainError::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let m = serde_json::from_str(&line).map_err(|e| TrainError::ConfigParse {
            path: path.to_path_buf(),
            line: i + 1,
            msg: e.to_string(),
        })?;
        out.push(m);
    }
    Ok(out)
}

fn truncate_after(path: &Path, step: u64) -> Result<()> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    let kept: String = text
        .lines()
        .filter(|l| match serde_json::from_str::<MetricsLine>(l) {
            Ok(m) => m.step() <= step,
            Err(_) => false,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    crate::checkpoint::write_atomic(path, kept.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn train_line(step: u64) -> MetricsLine {
        MetricsLine::Train {
            step,
            epoch: 0,
            loss: 1.5,
            accuracy: 0.25,
            lr: 0.1,
            images_per_sec: 10.0,
            elapsed_s: 1.0,
        }
    }

    #[test]
    fn lines_follow_the_contract_and_resume_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RunLog::open(dir.path(), None, false).unwrap();
        log.metrics(&train_line(10)).unwrap();
        log.metrics(&MetricsLine::Val {
            step: 10,
            epoch: 0,
            accuracy: 0.8,
            threshold: 0.3,
        })
        .unwrap();
        log.metrics(&train_line(20)).unwrap();
        drop(log);
        let text = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["kind"], "train");
        assert_eq!(first["images_per_sec"], 10.0);
        let _log = RunLog::open(dir.path(), Some(10), false).unwrap();
        let lines = read_metrics(&dir.path().join("metrics.jsonl")).unwrap();
        assert_eq!(lines.len(), 2);
        assert!(matches!(lines[1], MetricsLine::Val { threshold, .. } if threshold == 0.3));
    }
}
