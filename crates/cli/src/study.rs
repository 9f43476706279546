//! `arcface study`: the softmax-vs-ArcFace study of `arcface_study`, from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use arcface_study::{run_study, StudyOptions};
use arcface_train::TrainConfig;
use clap::Args;

/// Arguments of `study`.
#[derive(Args)]
pub struct StudyArgs {
    /// The CPU variant: the `study_quick` preset on `dev` only (about 6 minutes on 2 cores).
    #[arg(long)]
    pub quick: bool,
    /// Base config (preset name or TOML file); default `study_quick` with --quick, else
    /// `study_full` (dev and the ten view2 folds).
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

/// Runs the study and prints where its pages are.
pub fn run(a: StudyArgs) -> anyhow::Result<ExitCode> {
    let preset = a.config.unwrap_or_else(|| if a.quick { "study_quick".into() } else { "study_full".into() });
    let kernels = crate::kernel_env::from_env();
    let opts = StudyOptions {
        base: TrainConfig::from_spec(&preset)?,
        view2: !a.quick,
        out: a.out,
        device: arcface_backbone::select_device(&a.device, kernels.cuda_pool)?,
        kernels,
        toy_steps: (!a.no_toy).then_some(a.toy_steps),
        progress: crate::progress::auto(),
    };
    let pages = run_study(&opts)?;
    println!("cross-run report: {}", pages.report.display());
    println!("study report: {}", pages.study.display());
    Ok(ExitCode::SUCCESS)
}
