//! `arcface`: the one binary behind `cargo xtask`. The whole command line is declared here;
//! each command is its own module with a `run` function that calls the library crates.
//! Errors are printed as a chain of causes and exit with code 2 (`verify` uses 0 for SAME and 1
//! for DIFFERENT, so a failure must not look like either).


mod align;
mod bench;
mod compose;
mod detect;
mod download;
mod eval;
mod faces;
mod kernel_env;
mod pipeline;
mod preview;
mod progress;
mod study;
mod summary;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: arcface_kernels::allocator::MiMalloc = arcface_kernels::allocator::MiMalloc;

/// Train and evaluate ArcFace face-verification models.
#[derive(Parser)]
#[command(name = "arcface", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch and verify a dataset (`lfw` or `mtcnn`) into `<dir>/<dataset>/`.
    Download(download::DownloadArgs),
    /// Find the faces in photos: box, score and five landmarks per face, as JSON.
    Detect(detect::DetectArgs),
    /// Cut the main face of every photo in a folder, aligned to the ArcFace template, as PNGs.
    Align(align::AlignArgs),
    /// Write a PNG grid of preprocessed training crops, to check the crop by eye.
    Preview(preview::PreviewArgs),
    /// Train a backbone with a margin head.
    Train(Box<train::TrainArgs>),
    /// Evaluate a run or a weight file on verification pairs, or score a TSV.
    Eval(eval::EvalArgs),
    /// Decide whether two photos show the same person (exit 0 SAME, 1 DIFFERENT, 2 error).
    Verify(eval::VerifyArgs),
    /// Write embeddings of images or a normalized .npy batch to an N x D .npy file.
    Embed(eval::EmbedArgs),
    /// Print a backbone's parameter count and MACs per image.
    Summary(summary::SummaryArgs),
    /// Write one self-contained HTML page (and markdown) across runs.
    Report(eval::ReportArgs),
    /// The softmax-vs-ArcFace study: train both, evaluate, draw the figures.
    Study(study::StudyArgs),
    /// Training throughput of r34/r50 in images/s (optionally against PyTorch).
    Bench(bench::BenchArgs),
    /// Download LFW, train a config on its protocol, evaluate it and write the report.
    Pipeline(pipeline::PipelineArgs),
}

/// Model selection shared by eval, verify and embed.
#[derive(Args, Clone, Debug)]
pub struct ModelArgs {
    /// A training run folder (reads `model.json` and `model.safetensors`).
    #[arg(long, conflicts_with_all = ["weights"])]
    pub run: Option<PathBuf>,
    /// A weight file: our `.safetensors` or InsightFace's `backbone.pth`.
    #[arg(long, requires = "backbone")]
    pub weights: Option<PathBuf>,
    /// Backbone preset of `--weights`: r18, r34, r50 or r100.
    #[arg(long)]
    pub backbone: Option<String>,
}

impl ModelArgs {
    /// The model source, or `None` when neither `--run` nor `--weights` was given.
    pub fn source(&self) -> Option<arcface_eval::ModelSource> {
        match (&self.run, &self.weights, &self.backbone) {
            (Some(run), _, _) => Some(arcface_eval::ModelSource::Run(run.clone())),
            (None, Some(path), Some(backbone)) => Some(arcface_eval::ModelSource::Weights {
                path: path.clone(),
                backbone: backbone.clone(),
            }),
            _ => None,
        }
    }

    /// Like [`ModelArgs::source`] but an error when no model was named.
    pub fn required(&self) -> anyhow::Result<arcface_eval::ModelSource> {
        self.source()
            .ok_or_else(|| anyhow::anyhow!("name a model: --run runs/NAME, or --weights FILE --backbone rNN"))
    }
}

fn main() -> ExitCode {
    #[cfg(feature = "mimalloc")]
    arcface_kernels::allocator::keep_freed_memory();
    let cli = Cli::parse();
    init_logging();
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}

/// A count that must be at least 1 (batch sizes, steps): zero is refused by the parser rather
/// than silently replaced.
fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs one command.
fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Download(a) => download::run(a),
        Command::Detect(a) => detect::run(a),
        Command::Align(a) => align::run(a),
        Command::Preview(a) => preview::run(a),
        Command::Train(a) => train::run(*a),
        Command::Eval(a) => eval::run_eval(a),
        Command::Verify(a) => eval::run_verify(a),
        Command::Embed(a) => eval::run_embed(a),
        Command::Summary(a) => summary::run(a),
        Command::Report(a) => eval::run_report(a),
        Command::Study(a) => study::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Pipeline(a) => pipeline::run(a),
    }
}

/// Logs go to stderr; `RUST_LOG` tunes them (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
