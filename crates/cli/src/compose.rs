//! Steps that chain the libraries: an evaluation followed by its plots (arcface-eval then
//! arcface-report), and the final evaluation that `train` runs on a finished run
//! (arcface-train knows nothing of evaluation outputs).

use std::path::Path;

use anyhow::Context;
use arcface_backbone::KernelOptions;
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

/// The evaluation of a finished run of `cfg` on its protocol's test pairs, into `eval/`
/// (nothing when the config turns it off or trains on a folder without pairs).
pub fn final_eval(run: &Path, cfg: &TrainConfig, device: &Device, kernels: &KernelOptions) -> anyhow::Result<()> {
    if !cfg.train.eval_at_end || cfg.data.source == DataSource::Folder {
        return Ok(());
    }
    let pairs = PairSource::Lfw { lfw_dir: cfg.data.lfw_dir(), protocol: cfg.data.protocol };
    let mut opts = EvalOptions::new(Some(ModelSource::Run(run.to_path_buf())), pairs);
    opts.device = device.clone();
    opts.kernels = kernels.clone();
    opts.embed.batch_size = cfg.train.eval_batch_size;
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
