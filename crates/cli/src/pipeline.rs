//! `arcface pipeline`: download -> train -> eval -> report for one config (the eval being
//! train's own final one when the config asks for it). Each step is the
//! command a user would type, parsed by the same declaration and run in this process, so the
//! pipeline cannot drift from the commands it chains; it stops at the first failure.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use arcface_train::TrainConfig;
use clap::{Args, Parser};

use crate::Cli;

/// Arguments of `pipeline`.
#[derive(Args)]
pub struct PipelineArgs {
    /// Preset name (quick, r50_arcface, ...) or a TOML file.
    #[arg(long, default_value = "quick")]
    pub config: String,
    /// Where LFW comes from (a folder, an archive or a URL; default: the official site).
    #[arg(long)]
    pub from: Option<OsString>,
    /// Where the MTCNN weights come from (a folder or a base URL; default: facenet-pytorch's
    /// repository). They are fetched when the config trains on aligned faces
    /// (`[data] align = "mtcnn"`) or when this is given.
    #[arg(long)]
    pub mtcnn_from: Option<OsString>,
    /// Run folder (default `runs/<config name>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Folder of the report page.
    #[arg(long, default_value = "runs/report")]
    pub report: PathBuf,
}

/// Runs the four steps in order.
pub fn run(a: PipelineArgs) -> anyhow::Result<ExitCode> {
    let cfg = TrainConfig::from_spec(&a.config)?;
    let out: OsString = a.out.unwrap_or_else(|| PathBuf::from("runs").join(&cfg.name)).into();
    let device: OsString = a.device.into();

    let mut download: Vec<OsString> = vec!["download".into(), "lfw".into()];
    if let Some(from) = a.from {
        download.extend(["--from".into(), from]);
    }
    let mut steps: Vec<(&str, Vec<OsString>)> = vec![("download", download)];
    if cfg.data.align == arcface_data::Align::Mtcnn || a.mtcnn_from.is_some() {
        let mut mtcnn: Vec<OsString> = vec!["download".into(), "mtcnn".into()];
        if let Some(from) = a.mtcnn_from {
            mtcnn.extend(["--from".into(), from]);
        }
        steps.push(("download mtcnn", mtcnn));
    }
    steps.extend([
        (
            "train",
            vec!["train".into(), "--config".into(), a.config.into(), "--out".into(), out.clone(), "--device".into(), device.clone()],
        ),
    ]);
    // `train` already evaluates a finished run whose config asks for it (`eval_at_end`).
    if !cfg.train.eval_at_end {
        steps.push(("eval", vec!["eval".into(), "--run".into(), out.clone(), "--device".into(), device]));
    }
    steps.push(("report", vec!["report".into(), out.clone(), "--out".into(), a.report.clone().into()]));
    for (step, argv) in steps {
        eprintln!("== pipeline: {step}");
        let cli = Cli::try_parse_from(std::iter::once(OsString::from("arcface")).chain(argv))
            .with_context(|| format!("pipeline: building the `{step}` command"))?;
        let code = crate::dispatch(cli.command).with_context(|| format!("pipeline: `{step}` failed; earlier steps' outputs are kept"))?;
        if code != ExitCode::SUCCESS {
            eprintln!("pipeline: `{step}` did not succeed; earlier steps' outputs are kept");
            return Ok(code);
        }
    }
    eprintln!(
        "== pipeline: done; report in {}, run in {}",
        a.report.join("report.html").display(),
        PathBuf::from(out).display()
    );
    Ok(ExitCode::SUCCESS)
}
