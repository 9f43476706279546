//! Steps that chain the libraries: an evaluation followed by its plots (arcface-eval then
//! arcface-report), and the final evaluation that `train` runs on a finished run
//! (arcface-train knows nothing of evaluation outputs).

use std::path::{Path, PathBuf};

use anyhow::Context;
use arcface_backbone::KernelOptions;
use arcface_data::Protocol;
use arcface_eval::{eval_run, EvalOptions, EvalResult, ModelSource, PairSource};
use arcface_train::config::DataSource;
use arcface_train::TrainConfig;
use candle::Device;

/// Evaluates, then draws the ROC and score histogram beside `eval.json`.
pub fn evaluate(opts: &EvalOptions) -> anyhow::Result<EvalResult> {
    let mut result = eval_run(opts)?;
    let plots = arcface_report::write_eval_plots(&result)?;
    result.files.extend(plots);
    Ok(result)
}

/// What the final evaluation of a run needs from its config: the LFW folder, the protocol
/// and the batch size; `None` when the config turns it off or has no test pairs.
fn final_eval_plan(cfg: &TrainConfig) -> Option<(PathBuf, Protocol, usize)> {
    if !cfg.train.eval_at_end || cfg.data.source == DataSource::Folder {
        return None;
    }
    Some((cfg.data.lfw_dir(), cfg.data.protocol, cfg.train.eval_batch_size))
}

/// The evaluation of a finished run of `cfg` on its protocol's test pairs, into `eval/`
/// (nothing when the config turns it off or trains on a folder without pairs).
pub fn final_eval(run: &Path, cfg: &TrainConfig, device: &Device, kernels: &KernelOptions) -> anyhow::Result<()> {
    let Some((lfw_dir, protocol, batch_size)) = final_eval_plan(cfg) else {
        return Ok(());
    };
    let mut opts = EvalOptions::new(Some(ModelSource::Run(run.to_path_buf())), PairSource::Lfw { lfw_dir, protocol });
    opts.device = device.clone();
    opts.kernels = kernels.clone();
    opts.embed.batch_size = batch_size;
    opts.embed.progress = crate::progress::auto();
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
