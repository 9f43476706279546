//! The run folder `runs/<name>/` and the one typed API over its files (DESIGN.md, "Runs").
//!
//! Training writes the folder, evaluation and reports read it; every path and every file
//! format is spelled here and nowhere else: `model.json` ([`ModelInfo`]), `metrics.jsonl`
//! ([`MetricRecord`] lines, appended by [`MetricsWriter`]), `eval/eval.json`
//! ([`EvalReport`]), plus the paths of the resolved config, the log, the checkpoints and the
//! weights. It lives in eval's core because both sides already depend on it: training
//! (which writes the folder) uses eval's metrics, and eval.json's types are eval's.
//!
//! Readers are forgiving where a killed run leaves damage: the half-written last line of
//! `metrics.jsonl` is skipped, not an error. Checkpoints are the training crate's
//! `Checkpointer`'s business (it only ever lists committed ones).

mod eval_summary;
mod metrics_log;
mod model_info;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use eval_summary::EvalReport;
pub use metrics_log::{MetricRecord, MetricsWriter};
pub use model_info::ModelInfo;

use crate::error::{Error, Result};

/// The files of one run folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// The run folder at `root` (nothing is read or created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder's last path component, as a display name.
    pub fn name(&self) -> String {
        self.root.file_name().map_or_else(
            || self.root.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    /// Creates the folder.
    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))
    }

    /// `config.toml`: the resolved training configuration.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// `model.json`: what an evaluator needs to rebuild and feed the model.
    pub fn model_info_path(&self) -> PathBuf {
        self.root.join("model.json")
    }

    /// `metrics.jsonl`: one [`MetricRecord`] per line.
    pub fn metrics_path(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    /// `train.log`: human-readable training log.
    pub fn log_path(&self) -> PathBuf {
        self.root.join("train.log")
    }

    /// `checkpoints/`: owned by the training crate's `Checkpointer`.
    pub fn checkpoints_dir(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// `model.safetensors`: the final backbone weights (present once training finished).
    pub fn final_weights_path(&self) -> PathBuf {
        self.root.join("model.safetensors")
    }

    /// `best.safetensors`: the backbone of the best validation accuracy.
    pub fn best_weights_path(&self) -> PathBuf {
        self.root.join("best.safetensors")
    }

    /// `eval/`: the evaluation outputs.
    pub fn eval_dir(&self) -> PathBuf {
        self.root.join("eval")
    }

    /// `eval/eval.json`.
    pub fn eval_summary_path(&self) -> PathBuf {
        eval_summary::path_in(&self.eval_dir())
    }

    /// Reads `model.json`.
    pub fn model_info(&self) -> Result<ModelInfo> {
        ModelInfo::read(&self.model_info_path())
    }

    /// Writes `model.json` atomically.
    pub fn write_model_info(&self, info: &ModelInfo) -> Result<()> {
        info.write(&self.model_info_path())
    }

    /// Reads `metrics.jsonl`, skipping a half-written last line.
    pub fn metrics(&self) -> Result<Vec<MetricRecord>> {
        metrics_log::read(&self.metrics_path())
    }

    /// Opens `metrics.jsonl` for appending: a fresh file, or on resume (`keep_until`) the
    /// records up to that step.
    pub fn metrics_writer(&self, keep_until: Option<u64>) -> Result<MetricsWriter> {
        MetricsWriter::open(&self.metrics_path(), keep_until)
    }

    /// Reads `eval/eval.json`.
    pub fn eval_summary(&self) -> Result<EvalReport> {
        EvalReport::read(&self.eval_summary_path())
    }

    /// Writes `eval/eval.json` atomically (creating `eval/`).
    pub fn write_eval_summary(&self, report: &EvalReport) -> Result<PathBuf> {
        report.write_in(&self.eval_dir())
    }
}

/// Writes `bytes` to `path` through a fsynced temporary file and a rename, so readers see
/// the old file or the new one, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    replace_atomic(path, |tmp| {
        let mut f = std::fs::File::create(tmp)?;
        f.write_all(bytes)
    })
}

/// Replaces `path` with what `write` puts into a temporary file beside it (`.<name>.tmp`),
/// fsynced, then renamed over `path`: readers see the old file or the new one, never a torn
/// one. Any file format can go through it (JSON, safetensors).
pub fn replace_atomic(path: &Path, write: impl FnOnce(&Path) -> std::io::Result<()>) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = write(&tmp).and_then(|()| std::fs::File::open(&tmp).and_then(|f| f.sync_all()));
    if let Err(e) = written {
        // A full disk or a file-size limit: leave no half-written temporary behind, and name
        // the file the user asked for (the old one, if any, is untouched).
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Reads a whole JSON file into `T`; errors name the file.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::format(path, e.to_string()))
}

/// Writes `value` as pretty JSON, atomically.
fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| Error::format(path, e.to_string()))?;
    write_atomic(path, &bytes)
}
