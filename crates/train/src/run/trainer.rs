//! The state of a running loop: what was built before the first step, the step budget and
//! schedule, the progress so far, and the checkpoint writer that captures all of it.

use std::path::Path;
use std::time::Instant;

use arcface_data::Task;
use candle::{Device, Var};

use super::model::Nets;
use super::resume::Start;
use super::step::Window;
use super::RunOptions;
use crate::checkpoint::{CheckpointMeta, Checkpointer};
use crate::config::TrainConfig;
use crate::metrics::RunLog;
use crate::optim::Optimizer;
use crate::precision::PrecisionView;
use crate::schedule::LrSchedule;
use crate::error::Result;

/// The step budget and the learning rate of each step.
pub(super) struct Plan {
    /// Full batches per epoch.
    pub(super) steps_per_epoch: usize,
    /// Steps this run stops after: all epochs, or fewer with `max_steps`.
    pub(super) total_steps: u64,
    /// Warm-up then decay over all epochs (a `max_steps` cut does not compress it).
    pub(super) schedule: LrSchedule,
}

impl Plan {
    /// The plan of `config` with `spe` steps per epoch.
    pub(super) fn new(config: &TrainConfig, spe: usize) -> Self {
        let full = (config.train.epochs * spe) as u64;
        let total_steps = if config.train.max_steps > 0 {
            full.min(config.train.max_steps)
        } else {
            full
        };
        let schedule = LrSchedule {
            base_lr: config.schedule.lr,
            warmup_steps: (config.schedule.warmup_epochs * spe as f64).round() as u64,
            total_steps: (config.train.epochs * spe) as u64,
            steps_per_epoch: spe as u64,
            decay: config.schedule.decay.clone(),
        };
        Self {
            steps_per_epoch: spe,
            total_steps,
            schedule,
        }
    }
}

/// How far the run has come; checkpoints and the summary report it.
pub(super) struct Progress {
    /// Optimizer steps done in total.
    pub(super) step: u64,
    /// Completed epochs.
    pub(super) epochs_done: usize,
    /// Best validation accuracy.
    pub(super) best_val: Option<f64>,
    /// Mean training loss of the last logging window.
    pub(super) last_loss: Option<f64>,
    /// Last validation accuracy and threshold.
    pub(super) last_val: Option<(f64, f64)>,
    /// Stopped by the stop flag.
    pub(super) interrupted: bool,
}

impl From<&Start> for Progress {
    fn from(start: &Start) -> Self {
        Self {
            step: start.step,
            epochs_done: start.epoch,
            best_val: start.best_val,
            last_loss: None,
            last_val: None,
            interrupted: false,
        }
    }
}

/// A run in progress.
pub(super) struct Trainer<'a> {
    pub(super) config: &'a TrainConfig,
    pub(super) options: &'a RunOptions,
    pub(super) device: Device,
    pub(super) log: RunLog,
    pub(super) ckpt: Checkpointer,
    /// [`super::config_hash`] of `config`, stored in each checkpoint.
    pub(super) hash: String,
    pub(super) nets: Nets,
    /// The optimized variables, whose gradient norm is clipped.
    pub(super) trainable: Vec<Var>,
    pub(super) opt: Optimizer,
    pub(super) precision: PrecisionView,
    /// When this process started training.
    pub(super) started: Instant,
    /// Training time before a resume, seconds.
    pub(super) prior_elapsed: f64,
    /// The step position shown by a progress sink (none without one: train lines say it).
    pub(super) steps: Option<arcface_data::Reporter>,
    pub(super) plan: Plan,
    pub(super) progress: Progress,
    /// The current logging window.
    pub(super) window: Window,
}

impl Trainer<'_> {
    /// The run folder.
    pub(super) fn run_dir(&self) -> &Path {
        &self.options.out
    }

    /// Training wall time including time before a resume, seconds.
    pub(super) fn elapsed(&self) -> f64 {
        self.prior_elapsed + self.started.elapsed().as_secs_f64()
    }

    /// Checkpoints the current step as positioned before batch `batch` of `epoch` (a batch
    /// past the epoch's end means the start of the next epoch).
    pub(super) fn save_checkpoint(&self, epoch: usize, batch: usize) -> Result<()> {
        let opt_state = self.opt.state_tensors();
        let elapsed_s = self.elapsed();
        let (epoch, batch) = if batch >= self.plan.steps_per_epoch {
            (epoch + 1, 0)
        } else {
            (epoch, batch)
        };
        let meta = CheckpointMeta {
            step: self.progress.step,
            epoch,
            batch_in_epoch: batch,
            seed: self.config.seed,
            config_hash: self.hash.clone(),
            best_val: self.progress.best_val,
            elapsed_s,
            tensors: String::new(),
        };
        let mut tensors = self.nets.tensors();
        tensors.extend(opt_state);
        self.ckpt.save(&meta, &tensors)?;
        Ok(())
    }
}

/// Step progress over all steps, starting at `step`, when a sink shows it. Plain lines of
/// their own would repeat the train lines, so `Lines` and `Silent` get none.
pub(super) fn step_progress(
    progress: &arcface_data::Progress,
    total_steps: u64,
    step: u64,
) -> Option<arcface_data::Reporter> {
    progress
        .is_sink()
        .then(|| progress.start(Task::items("training", total_steps).starting_at(step)))
}
