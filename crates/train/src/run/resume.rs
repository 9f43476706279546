//! Starting a run fresh or from its latest checkpoint: refusing to overwrite checkpoints
//! without `--resume`, and restoring weights, buffers, optimizer state and data position.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle::{Device, Tensor};
use sha2::{Digest, Sha256};

use super::model::Nets;
use crate::checkpoint::{self, CheckpointMeta, Checkpointer};
use crate::config::TrainConfig;
use crate::metrics::RunLog;
use crate::optim::Optimizer;
use crate::error::{Result, TrainError};

/// Where the loop starts: zero for a fresh run, the checkpoint's position when resuming.
pub(super) struct Start {
    /// Optimizer steps already done.
    pub(super) step: u64,
    /// The epoch to continue.
    pub(super) epoch: usize,
    /// Batches of that epoch already done.
    pub(super) skip: usize,
    /// Best validation accuracy so far.
    pub(super) best_val: Option<f64>,
    /// Training time before this start, seconds.
    pub(super) elapsed_s: f64,
}

/// The checkpoint a run resumes from, already read.
pub(super) struct Resume {
    meta: CheckpointMeta,
    path: PathBuf,
    tensors: HashMap<String, Tensor>,
    /// Newer checkpoints passed over because their tensors could not be read.
    pub(super) skipped: Vec<String>,
}

impl Resume {
    /// The step it resumes at.
    pub(super) fn step(&self) -> u64 {
        self.meta.step
    }
}

/// Opens `run_dir/checkpoints` and, with `resume`, reads the newest checkpoint whose tensors
/// load, passing over damaged newer ones. A run stopped before its first intact checkpoint
/// starts again from step 0 (the seed fixes everything, so it ends as an uninterrupted run
/// would), with the returned note saying so; a finished run without one is an error. Without
/// `resume`, an error when the folder already holds a run.
pub(super) fn open_checkpoints(
    config: &TrainConfig,
    run_dir: &Path,
    resume: bool,
    device: &Device,
) -> Result<(Checkpointer, Option<Resume>, Option<String>)> {
    let ckpt = Checkpointer::new(run_dir.join("checkpoints"), config.train.keep_checkpoints)?;
    if resume {
        let mut skipped = Vec::new();
        for (meta, path) in ckpt.list()?.into_iter().rev() {
            match checkpoint::load_tensors(&path, &meta, device) {
                Ok(tensors) => return Ok((ckpt, Some(Resume { meta, path, tensors, skipped }), None)),
                Err(e) => skipped.push(format!("passed over a damaged checkpoint: {e}")),
            }
        }
        let why = if skipped.is_empty() { String::new() } else { format!(" ({})", skipped.join("; ")) };
        if arcface_eval::RunDir::new(run_dir).final_weights_path().exists() {
            return Err(TrainError::Setup(format!("--resume: no intact checkpoint in {}{why}", ckpt.dir().display())));
        }
        let note = format!("--resume: no intact checkpoint in {}{why}: the run starts again from step 0", ckpt.dir().display());
        return Ok((ckpt, None, Some(note)));
    }
    if !ckpt.list()?.is_empty() {
        return Err(TrainError::Setup(format!(
            "{} already holds checkpoints: pass --resume to continue it, or choose another run folder",
            run_dir.display()
        )));
    }
    // A finished run whose checkpoints were deleted still has its model and metrics (and
    // perhaps an eval whose threshold `verify` would apply to a new model): never replace it.
    let run = arcface_eval::RunDir::new(run_dir);
    let has_metrics = std::fs::metadata(run.metrics_path()).is_ok_and(|m| m.len() > 0);
    if run.final_weights_path().exists() || has_metrics {
        return Err(TrainError::Setup(format!(
            "{} already holds a run ({}): choose another run folder, or delete it first",
            run_dir.display(),
            if has_metrics { "metrics.jsonl" } else { "model.safetensors" }
        )));
    }
    Ok((ckpt, None, None))
}

/// Loads the checkpoint `from` (if any) into the networks and the optimizer; `hash` is the
/// current [`config_hash`], compared with the checkpoint's to warn about a changed config.
pub(super) fn restore(
    from: Option<&Resume>,
    nets: &Nets,
    opt: &mut Optimizer,
    hash: &str,
    log: &mut RunLog,
) -> Result<Start> {
    let Some(Resume { meta, path, tensors, skipped }) = from else {
        return Ok(Start {
            step: 0,
            epoch: 0,
            skip: 0,
            best_val: None,
            elapsed_s: 0.0,
        });
    };
    for warning in skipped {
        log.info(&format!("warning: {warning}"));
    }
    checkpoint::restore_vars(path, "backbone", &nets.bb_vars, tensors)?;
    checkpoint::restore_vars(path, "head", &nets.head_vars, tensors)?;
    opt.load_state(tensors, meta.step)?;
    if meta.config_hash != hash {
        log.info("warning: the configuration changed since this checkpoint was written");
    }
    log.info(&format!(
        "resumed from {} (step {}, epoch {})",
        path.display(),
        meta.step,
        meta.epoch
    ));
    Ok(Start {
        step: meta.step,
        epoch: meta.epoch,
        skip: meta.batch_in_epoch,
        best_val: meta.best_val,
        elapsed_s: meta.elapsed_s,
    })
}

/// SHA-256 of everything that shapes the model or the data.
pub fn config_hash(config: &TrainConfig) -> String {
    let key = serde_json::json!({
        "seed": config.seed, "data": config.data, "model": config.model, "loss": config.loss,
    });
    hex::encode(Sha256::digest(key.to_string().as_bytes()))
}
