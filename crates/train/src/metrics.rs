//! The run's logs: `metrics.jsonl` (typed [`MetricRecord`] lines; the format is owned by
//! arcface-eval's [`RunDir`]) and `train.log` (human-readable lines, also echoed to the
//! terminal when no progress bar is shown). On resume the records past the checkpoint's step
//! are dropped, so the metrics read as one uninterrupted run.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

pub use arcface_eval::MetricRecord;
use arcface_eval::{MetricsWriter, RunDir};

use crate::error::{Result, TrainError};

/// Appends to `metrics.jsonl` and `train.log`.
pub struct RunLog {
    metrics: MetricsWriter,
    log: File,
    echo: bool,
}

impl RunLog {
    /// Opens both files in `run_dir` for appending. With `keep_until = Some(step)` (resume),
    /// metrics records after `step` are removed first. `echo` copies log lines to stderr.
    pub fn open(run_dir: &Path, keep_until: Option<u64>, echo: bool) -> Result<Self> {
        let run = RunDir::new(run_dir);
        let metrics = run.metrics_writer(keep_until)?;
        let log_path = run.log_path();
        if keep_until.is_none() {
            File::create(&log_path).map_err(|e| TrainError::io(&log_path, e))?;
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| TrainError::io(&log_path, e))?;
        Ok(Self { metrics, log, echo })
    }

    /// Appends one metrics record (flushed, so a killed run keeps it).
    pub fn metrics(&mut self, record: &MetricRecord) -> Result<()> {
        Ok(self.metrics.append(record)?)
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
