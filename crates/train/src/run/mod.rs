//! The training run: builds data, model, head, optimizer and schedule from a [`TrainConfig`],
//! runs the loop, validates after each epoch, checkpoints, and writes the run folder
//! (`config.toml`, `model.json`, `metrics.jsonl`, `train.log`, `checkpoints/`,
//! `best.safetensors`, `model.safetensors`; paths and formats owned by arcface-eval's
//! `RunDir`) as DESIGN.md's "Runs" section describes. Evaluating the finished run into
//! `eval/` is left to the caller.
//!
//! Reference: InsightFace `arcface_torch/train_v2.py` (forward, margin loss, backward, clip,
//! SGD step, poly schedule). A resumed run continues exactly: weights, buffers, optimizer
//! state and the data position are restored, and the data order is a pure function of
//! (seed, epoch).
//!
//! [`train_with_stop`] reads as the run's outline; `data`, `model` and `resume` build what
//! the loop needs, `trainer` holds the loop's state, `epoch` and `step` run it, `finish`
//! writes the final outputs.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::checkpoint;
use crate::config::TrainConfig;
use crate::metrics::RunLog;
use crate::optim::Optimizer;
use crate::precision::PrecisionView;
use crate::signals::StopFlag;

mod data;
mod epoch;
mod finish;
mod model;
mod resume;
mod step;
mod trainer;

pub use data::{load_split, model_info};
pub use model::head_config;
pub use resume::config_hash;

use data::TrainData;
use model::Nets;
use trainer::{Plan, Progress, Trainer};
use crate::error::{Result, TrainError};

/// How and where to run a configuration.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Run folder (conventionally `runs/<name>`).
    pub out: PathBuf,
    /// Continue from the folder's latest checkpoint.
    pub resume: bool,
    /// The device to train on (`arcface_backbone::select_device` picks one by name).
    pub device: candle::Device,
    /// The kernels the backbone runs on (`Default` for the library's own choice).
    pub kernels: arcface_backbone::KernelOptions,
    /// Where the image-cache builds and the steps report progress. A sink gets the step
    /// position with a loss/accuracy/lr/throughput status, and train lines then go to
    /// `train.log` only (the sink owns the terminal); otherwise they are also echoed to stderr.
    pub progress: arcface_data::Progress,
}

/// What a finished (or interrupted) run reports.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Optimizer steps done in total.
    pub steps: u64,
    /// Completed epochs.
    pub epochs: usize,
    /// Training identities.
    pub num_classes: usize,
    /// Training images.
    pub num_images: usize,
    /// Mean training loss of the last logging window.
    pub last_loss: Option<f64>,
    /// Last validation accuracy and threshold.
    pub last_val: Option<(f64, f64)>,
    /// Best validation accuracy.
    pub best_val: Option<f64>,
    /// Stopped by SIGINT/SIGTERM (a checkpoint was written).
    pub interrupted: bool,
    /// Training wall time including time before a resume, seconds.
    pub elapsed_s: f64,
}

/// Trains `config` into `options.out`, stopping cleanly on SIGINT/SIGTERM.
pub fn train(config: &TrainConfig, options: &RunOptions) -> Result<TrainSummary> {
    let stop = StopFlag::new();
    stop.install()?;
    train_with_stop(config, options, &stop)
}

/// As [`train`], with a caller-owned stop flag (no signal handlers installed).
pub fn train_with_stop(
    config: &TrainConfig,
    options: &RunOptions,
    stop: &StopFlag,
) -> Result<TrainSummary> {
    config.validate()?;
    let run_dir = &options.out;
    std::fs::create_dir_all(run_dir).map_err(|e| TrainError::io(run_dir, e))?;
    let device = options.device.clone();
    let (ckpt, resume_from, restart) = resume::open_checkpoints(config, run_dir, options.resume, &device)?;
    let echo = !options.progress.is_sink();
    let mut log = RunLog::open(run_dir, resume_from.as_ref().map(|r| r.step()), echo)?;
    if let Some(note) = restart {
        log.info(&note);
    }
    checkpoint::write_atomic(
        &arcface_eval::RunDir::new(run_dir).config_path(),
        config.to_toml().as_bytes(),
    )?;

    let bb_cfg = config.backbone_config().map_err(|msg| TrainError::ConfigInvalid {
        path: "<config>".into(),
        line: 0,
        key: "model".into(),
        msg,
    })?;
    let data = TrainData::prepare(config, run_dir, &bb_cfg, &device, &options.progress, &mut log)?;
    let nets = Nets::init(config, &bb_cfg, &options.kernels, data.train_set.num_classes(), &device)?;
    let trainable = nets.trainable();
    let clipped = trainable.iter().map(|(_, v)| v.clone()).collect();
    let mut opt = Optimizer::new(config.optim.clone(), trainable, config.schedule.lr);
    let hash = config_hash(config);
    let plan = Plan::new(config, data.steps_per_epoch);
    let start = resume::restore(
        resume_from.as_ref(),
        &nets,
        &mut opt,
        &hash,
        &mut log,
    )?;
    let precision = PrecisionView::new(config.train.precision, &bb_cfg, &nets.bb_vm, &device)?;

    let mut trainer = Trainer {
        config,
        options,
        device,
        log,
        ckpt,
        hash,
        nets,
        trainable: clipped,
        opt,
        precision,
        started: Instant::now(),
        prior_elapsed: start.elapsed_s,
        steps: trainer::step_progress(&options.progress, plan.total_steps, start.step),
        plan,
        progress: Progress::from(&start),
        window: step::Window::new(),
    };
    trainer.run_epochs(&data, &start, stop)?;
    trainer.finish(&data)
}
