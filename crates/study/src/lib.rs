//! arcface-study: the ArcFace paper's softmax-vs-ArcFace comparison, reproduced on LFW.
//!
//! Trains normalized softmax (`s cos theta`) and ArcFace (`s cos(theta + m)`) with the same
//! backbone, data, schedule, scale and seed, evaluates both on the protocol's test pairs, and
//! writes a report with: the accuracy table, ROC overlay and training curves (the cross-run
//! report), the angle between each training embedding and its own class center versus the
//! nearest other center (the paper's figures 5-8), the angles of same-person and
//! different-person test pairs, and a 2-D picture of the 8 LFW people with the most images
//! embedded in 2-d by each loss (a projection learned with that loss over its frozen backbone,
//! see [`toy`]), drawn on the unit circle with their class centers (the paper's toy figure). The quick variant trains the CPU-sized
//! `study_quick` preset on `dev` only; the full one (`study_full`) adds all ten `view2` folds
//! (a GPU run). `arcface study` is a thin front to [`run_study`].
//!
//! Finished runs are reused, so an interrupted study picks up where it stopped.

#![warn(missing_docs)]

pub mod angles;
mod error;
mod figures;
pub mod toy;

use std::path::{Path, PathBuf};

use arcface_backbone::KernelOptions;
pub use error::{Result, StudyError};
use arcface_data::lfw::VIEW2_FOLDS;
use arcface_data::{Align, Progress, Protocol};
use arcface_eval::{eval_run, EvalOptions, EvalReport, ModelSource, PairSource, RunDir};
use arcface_loss::Margin;
use arcface_report::{write_eval_plots, write_report};
use arcface_train::{train, Checkpointer, RunOptions, TrainConfig};
use candle::Device;

/// The 8 LFW people with the most images (the 2-D figure).
pub const TOP8: [&str; 8] = [
    "George_W_Bush",
    "Colin_Powell",
    "Tony_Blair",
    "Donald_Rumsfeld",
    "Gerhard_Schroeder",
    "Ariel_Sharon",
    "Hugo_Chavez",
    "Junichiro_Koizumi",
];

/// The two heads compared: normalized softmax, and the preset's own margin (ArcFace).
const LOSSES: [&str; 2] = ["softmax", "arcface"];

/// What to run and where.
#[derive(Debug, Clone)]
pub struct StudyOptions {
    /// The shared recipe; each run replaces its margin (softmax, or the recipe's own) and its
    /// protocol.
    pub base: TrainConfig,
    /// Also train and evaluate on all ten `view2` folds (else `dev` only).
    pub view2: bool,
    /// Output folder: one run folder per loss and protocol, `report/`, and the study page.
    pub out: PathBuf,
    /// The device everything runs on.
    pub device: Device,
    /// The kernels the backbones run on.
    pub kernels: KernelOptions,
    /// Full-batch steps of the 2-D toy projection; `None` skips the toy figure.
    pub toy_steps: Option<usize>,
    /// Where training and the embedding passes report their progress.
    pub progress: Progress,
}

/// The pages a study writes.
#[derive(Debug, Clone)]
pub struct StudyPages {
    /// The cross-run report of every run.
    pub report: PathBuf,
    /// The study's own page (tables and figures).
    pub study: PathBuf,
}

/// Trains, evaluates and draws everything `opts` asks for, reusing finished runs.
pub fn run_study(opts: &StudyOptions) -> Result<StudyPages> {
    std::fs::create_dir_all(&opts.out).map_err(|e| StudyError::io(&opts.out, e))?;
    let mut protocols = vec![Protocol::Dev];
    if opts.view2 {
        protocols.extend((0..VIEW2_FOLDS).map(|fold| Protocol::View2 { fold }));
    }

    let mut dev_runs = Vec::new();
    let mut all_runs = Vec::new();
    for protocol in protocols {
        for loss in LOSSES {
            let mut cfg = opts.base.clone();
            if loss == "softmax" {
                cfg.loss.margin = Margin::Softmax;
            }
            cfg.data.protocol = protocol;
            cfg.name = format!("{loss}-{}", protocol.to_string().replace(':', "-"));
            cfg.validate()?;
            let dir = opts.out.join(&cfg.name);
            train_once(&cfg, &dir, opts)?;
            evaluate_once(&cfg, &dir, opts)?;
            if protocol == Protocol::Dev {
                dev_runs.push((loss, cfg.clone(), dir.clone()));
            }
            all_runs.push(dir);
        }
    }

    let report = write_report(&all_runs, &opts.out.join("report"))?;
    eprintln!("cross-run report: {}", report.display());

    // Angle statistics on the dev runs: their training images, cut as the runs saw them.
    if opts.base.data.align == Align::Mtcnn {
        arcface_data::faces::load_detector(&opts.base.data.dir.join("mtcnn")).map_err(arcface_eval::Error::from)?;
    }
    let mut class_angles = Vec::new();
    let mut pair_angles = Vec::new();
    for (loss, cfg, dir) in &dev_runs {
        class_angles.push((loss.to_string(), angles::class_angles(cfg, dir, opts)?));
        pair_angles.push((loss.to_string(), angles::pair_angles(dir)?));
    }
    let mut toy = Vec::new();
    if let Some(steps) = opts.toy_steps {
        for (loss, cfg, dir) in &dev_runs {
            let t = toy::toy_2d(cfg, dir, steps, opts)?;
            eprintln!("== study: 2-D toy ({loss}): loss {:.3}, training accuracy {:.1}%", t.loss, t.accuracy * 100.0);
            toy.push((loss.to_string(), t));
        }
    }
    let rows = dev_runs_summary(&dev_runs)?;
    let study = figures::write_study(&opts.out, &opts.base.name, &rows, &all_runs, &class_angles, &pair_angles, &toy)?;
    Ok(StudyPages { report, study })
}

/// Trains unless the run already finished; resumes it when it has checkpoints.
fn train_once(cfg: &TrainConfig, dir: &Path, opts: &StudyOptions) -> Result<()> {
    let run = RunDir::new(dir);
    if run.final_weights_path().is_file() {
        eprintln!("== study: {} already trained, reusing {}", cfg.name, dir.display());
        return Ok(());
    }
    let ckdir = run.checkpoints_dir();
    let resume = ckdir.is_dir() && Checkpointer::new(&ckdir, 1)?.latest()?.is_some();
    eprintln!("== study: training {} ({})", cfg.name, if resume { "resuming" } else { "from scratch" });
    let run_options = RunOptions {
        out: dir.to_path_buf(),
        resume,
        device: opts.device.clone(),
        kernels: opts.kernels.clone(),
        progress: opts.progress.clone(),
    };
    let summary = train(cfg, &run_options)?;
    if summary.interrupted {
        return Err(StudyError::Invalid(format!(
            "training of {} was interrupted; run the study again to resume it",
            cfg.name
        )));
    }
    Ok(())
}

/// Evaluates a run on its protocol's test pairs (with its plots) unless that was done.
fn evaluate_once(cfg: &TrainConfig, dir: &Path, opts: &StudyOptions) -> Result<()> {
    let run = RunDir::new(dir);
    if run.eval_summary_path().is_file() && run.eval_dir().join("scores.tsv").is_file() {
        return Ok(());
    }
    let (lfw_dir, protocol) = (cfg.data.lfw_dir(), cfg.data.protocol);
    let mut eval = EvalOptions::new(Some(ModelSource::Run(dir.to_path_buf())), PairSource::Lfw { lfw_dir, protocol });
    eval.device = opts.device.clone();
    eval.kernels = opts.kernels.clone();
    eval.embed.progress = opts.progress.clone();
    let r = eval_run(&eval)?;
    write_eval_plots(&r)?;
    eprintln!(
        "== study: {} on {protocol}: accuracy {:.2}% +- {:.2}, AUC {:.4}",
        cfg.name,
        r.report.accuracy_mean * 100.0,
        r.report.accuracy_std * 100.0,
        r.report.auc
    );
    Ok(())
}

/// One row of the study's own accuracy table.
pub struct RunRow {
    /// Loss name.
    pub loss: String,
    /// The run folder.
    pub dir: PathBuf,
    /// Its `eval.json`.
    pub eval: EvalReport,
}

fn dev_runs_summary(runs: &[(&str, TrainConfig, PathBuf)]) -> Result<Vec<RunRow>> {
    runs.iter()
        .map(|(loss, _, dir)| {
            let eval = RunDir::new(dir).eval_summary()?;
            Ok(RunRow { loss: loss.to_string(), dir: dir.clone(), eval })
        })
        .collect()
}

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
