//! `arcface study`: the ArcFace paper's softmax-vs-ArcFace comparison, reproduced on LFW.
//!
//! Trains normalized softmax (`s cos theta`) and ArcFace (`s cos(theta + m)`) with the same
//! backbone, data, schedule, scale and seed, evaluates both on the protocol's test pairs, and
//! writes a report with: the accuracy table, ROC overlay and training curves (the cross-run
//! report), the angle between each training embedding and its own class center versus the
//! nearest other center (the paper's figures 5-8), the angles of same-person and
//! different-person test pairs, and a 2-D picture of the 8 LFW people with the most images
//! embedded in 2-d by each loss (a projection learned with that loss over its frozen backbone,
//! see [`toy`]), drawn on the unit circle with their class centers (the paper's toy figure). `--quick` uses the CPU-sized `study_quick` preset on `dev`; the full variant uses
//! `configs/study_full.toml` on `dev` and all ten `view2` folds (a GPU run).
//!
//! Finished runs are reused, so an interrupted study picks up where it stopped.

mod angles;
mod figures;
mod toy;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use arcface_data::Protocol;
use arcface_loss::Margin;
use arcface_eval::{EvalOptions, EvalReport, ModelSource, PairSource, RunDir};
use arcface_report::write_report;
use arcface_train::{train, Checkpointer, RunOptions, TrainConfig};
use candle::Device;
use clap::Args;

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

/// The two losses compared.
/// The two heads compared: normalized softmax, and the preset's own margin (ArcFace).
const LOSSES: [&str; 2] = ["softmax", "arcface"];

/// Arguments of `study`.
#[derive(Args)]
pub struct StudyArgs {
    /// The CPU variant: the `study_quick` preset on `dev` only (about 6 minutes on 2 cores).
    #[arg(long)]
    pub quick: bool,
    /// Base config (preset name or TOML file); default `quick` with --quick, else `study_full`.
    #[arg(long)]
    pub config: Option<String>,
    /// Output folder.
    #[arg(long, default_value = "runs/study")]
    pub out: PathBuf,
    /// auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Full-batch steps of the 2-D toy projection (seconds of CPU).
    #[arg(long, default_value_t = 1500)]
    pub toy_steps: usize,
    /// Skip the 2-D toy figure.
    #[arg(long)]
    pub no_toy: bool,
}

pub fn run(a: StudyArgs) -> anyhow::Result<ExitCode> {
    let preset = a.config.clone().unwrap_or_else(|| if a.quick { "study_quick".into() } else { "study_full".into() });
    let base = TrainConfig::from_spec(&preset)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let device = arcface_backbone::select_device(&a.device, crate::kernel_env::from_env().cuda_pool)?;

    // Which protocol runs: dev always; the full variant adds the ten view2 folds.
    let mut protocols: Vec<(String, Option<usize>)> = vec![("dev".into(), None)];
    if !a.quick {
        protocols.extend((0..10).map(|k| ("view2".to_string(), Some(k))));
    }

    let mut dev_runs = Vec::new();
    let mut all_runs = Vec::new();
    for (protocol, fold) in &protocols {
        for loss in LOSSES {
            let mut cfg = base.clone();
            if loss == "softmax" {
                cfg.loss.margin = Margin::Softmax;
            }
            cfg.data.protocol = Protocol::from_name(protocol, *fold)?;
            cfg.name = match fold {
                Some(k) => format!("{loss}-view2-{k}"),
                None => format!("{loss}-{protocol}"),
            };
            cfg.validate()?;
            let dir = a.out.join(&cfg.name);
            train_once(&cfg, &dir, &device)?;
            let eval_protocol = cfg.data.protocol;
            evaluate_once(&cfg, &dir, eval_protocol, &device)?;
            if fold.is_none() {
                dev_runs.push((loss, cfg.clone(), dir.clone()));
            }
            all_runs.push(dir);
        }
    }

    let report_dir = a.out.join("report");
    let html = write_report(&all_runs, &report_dir)?;
    eprintln!("cross-run report: {}", html.display());

    // Angle statistics on the dev runs.
    let mut class_angles = Vec::new();
    let mut pair_angles = Vec::new();
    for (loss, cfg, dir) in &dev_runs {
        class_angles.push((loss.to_string(), angles::class_angles(cfg, dir, &device)?));
        pair_angles.push((loss.to_string(), angles::pair_angles(dir)?));
    }
    let mut toy = Vec::new();
    if !a.no_toy {
        for (loss, cfg, dir) in &dev_runs {
            let t = toy::toy_2d(cfg, dir, a.toy_steps, &device)?;
            eprintln!("== study: 2-D toy ({loss}): loss {:.3}, training accuracy {:.1}%", t.loss, t.accuracy * 100.0);
            toy.push((loss.to_string(), t));
        }
    }
    let page = figures::write_study(&a.out, &preset, &dev_runs_summary(&dev_runs)?, &all_runs, &class_angles, &pair_angles, &toy)?;
    println!("study report: {}", page.display());
    Ok(ExitCode::SUCCESS)
}

/// Trains unless the run already finished; resumes it when it has checkpoints.
pub(crate) fn train_once(cfg: &TrainConfig, dir: &Path, device: &Device) -> anyhow::Result<()> {
    let run = RunDir::new(dir);
    if run.final_weights_path().is_file() {
        eprintln!("== study: {} already trained, reusing {}", cfg.name, dir.display());
        return Ok(());
    }
    let ckdir = run.checkpoints_dir();
    let resume = ckdir.is_dir() && Checkpointer::new(&ckdir, 1)?.latest()?.is_some();
    eprintln!("== study: training {} ({})", cfg.name, if resume { "resuming" } else { "from scratch" });
    let summary = train(cfg, &RunOptions { out: dir.to_path_buf(), resume, device: device.clone(), kernels: crate::kernel_env::from_env() })?;
    if summary.interrupted {
        bail!("training of {} was interrupted; run the study again to resume it", cfg.name);
    }
    Ok(())
}

fn evaluate_once(cfg: &TrainConfig, dir: &Path, protocol: Protocol, device: &Device) -> anyhow::Result<()> {
    let run = RunDir::new(dir);
    if run.eval_summary_path().is_file() && run.eval_dir().join("scores.tsv").is_file() {
        return Ok(());
    }
    let lfw_dir = cfg.data.lfw_dir();
    let mut opts = EvalOptions::new(Some(ModelSource::Run(dir.to_path_buf())), PairSource::Lfw { lfw_dir, protocol });
    opts.device = device.clone();
    opts.embed.progress = crate::progress::bar();
    let r = crate::compose::evaluate(&opts)?;
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

fn dev_runs_summary(runs: &[(&str, TrainConfig, PathBuf)]) -> anyhow::Result<Vec<RunRow>> {
    runs.iter()
        .map(|(loss, _, dir)| {
            let eval = RunDir::new(dir).eval_summary()?;
            Ok(RunRow { loss: loss.to_string(), dir: dir.clone(), eval })
        })
        .collect()
}
