//! Commands that chain the libraries: an evaluation followed by its plots (arcface-eval then
//! arcface-report), and training followed by the final evaluation of the finished run
//! (arcface-train knows nothing of evaluation outputs).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use arcface_data::Protocol;
use arcface_eval::{eval_run, EvalOptions, EvalResult, ModelSource, PairSource, RunDir};
use arcface_train::TrainConfig;

use crate::train::TrainArgs;

/// Evaluates, then draws the ROC and score histogram beside `eval.json`.
pub fn evaluate(opts: &EvalOptions) -> anyhow::Result<EvalResult> {
    let mut result = eval_run(opts)?;
    let plots = arcface_report::write_eval_plots(&result)?;
    result.files.extend(plots);
    Ok(result)
}

/// `arcface train`, then, when the run finished (it wrote new final weights) and its config
/// asks for it, the evaluation of the run on its protocol's test pairs into `eval/`.
pub fn train_then_eval(a: TrainArgs) -> anyhow::Result<ExitCode> {
    let run = RunDir::new(run_folder(&a)?);
    let device = a.device.clone();
    let before = modified(&run.final_weights_path());
    let code = crate::train::run(a)?;
    let after = modified(&run.final_weights_path());
    if after.is_some() && after != before {
        final_eval(&run, &device)?;
    }
    Ok(code)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The folder `train` writes: `--resume`, `--out`, else `runs/<config name>`.
fn run_folder(a: &TrainArgs) -> anyhow::Result<PathBuf> {
    if let Some(dir) = a.resume.as_ref().or(a.out.as_ref()) {
        return Ok(dir.clone());
    }
    let spec = &a.config;
    let cfg = if spec.ends_with(".toml") || spec.contains('/') || spec.contains('\\') {
        TrainConfig::from_toml_file(spec)?
    } else {
        TrainConfig::preset(spec)?
    };
    Ok(PathBuf::from("runs").join(cfg.name))
}

/// What the final evaluation of a run needs from its config: the LFW folder, the protocol
/// and the batch size; `None` when the config turns it off or has no test pairs.
fn final_eval_plan(cfg: &TrainConfig) -> anyhow::Result<Option<(PathBuf, Protocol, usize)>> {
    if !cfg.train.eval_at_end || cfg.data.source == "folder" {
        return Ok(None);
    }
    let protocol = arcface_train::run::lfw_protocol(cfg)?;
    Ok(Some((arcface_train::run::lfw_dir(cfg), protocol, cfg.train.eval_batch_size)))
}

fn final_eval(run: &RunDir, device: &str) -> anyhow::Result<()> {
    let cfg = TrainConfig::from_toml_file(run.config_path())?;
    let Some((lfw_dir, protocol, batch_size)) = final_eval_plan(&cfg)? else {
        return Ok(());
    };
    let mut opts = EvalOptions::new(
        Some(ModelSource::Run(run.root().to_path_buf())),
        PairSource::Lfw { lfw_dir, protocol },
    );
    opts.device = arcface_backbone::select_device(device)?;
    opts.embed.batch_size = batch_size;
    opts.embed.progress = crate::progress::bar();
    let r = evaluate(&opts).context("final evaluation")?;
    println!(
        "final eval on {}: accuracy {:.2}% +- {:.2}%, written to {}",
        r.report.protocol,
        100.0 * r.report.accuracy_mean,
        100.0 * r.report.accuracy_std,
        r.out_dir.display()
    );
    Ok(())
}
