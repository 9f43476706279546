//! `arcface eval`, `verify`, `embed` and `report`: thin wrappers over `arcface_eval` (and
//! `arcface_report` for the plots and the cross-run report). The device is resolved here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use arcface_data::Protocol;
use arcface_eval::{embed_command, verify, EmbedConfig, EmbedOptions, EvalOptions, ModelSource, PairSource, RunDir, VerifyOptions};
use arcface_report::write_report;
use clap::Args;

use crate::ModelArgs;

/// Arguments of `eval`.
#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// LFW protocol: `dev` (pairsDevTest), `pairs` (all of pairs.txt, its 10 folds), `view2:K`
    /// (fold K only). Default: the run's own protocol, else `pairs`.
    #[arg(long)]
    pub protocol: Option<String>,
    /// A pairs file in `pairs.txt` format over the LFW images.
    #[arg(long, conflicts_with_all = ["protocol", "bin", "scores"])]
    pub pairs: Option<PathBuf>,
    /// An InsightFace verification `.bin` (lfw.bin, cfp_fp.bin, agedb_30.bin).
    #[arg(long, conflicts_with_all = ["protocol", "scores"])]
    pub bin: Option<PathBuf>,
    /// Metrics from an external score file (TSV with `same`, `score`, optional `fold`); no model.
    #[arg(long, conflicts_with_all = ["protocol", "bin", "run", "weights"])]
    pub scores: Option<PathBuf>,
    /// Scores are distances (lower = same); with a model: score by squared L2 distance.
    #[arg(long)]
    pub distance: bool,
    /// LFW folder (holding `lfw-deepfunneled/` and the protocol files).
    #[arg(long, default_value = arcface_data::lfw::DEFAULT_LFW_DIR)]
    pub lfw: PathBuf,
    /// Turn the flip test off.
    #[arg(long)]
    pub no_flip: bool,
    /// Images per forward pass.
    #[arg(long, default_value_t = 64, value_parser = crate::positive)]
    pub batch_size: usize,
    /// auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Output folder (default `<run>/eval` for the run's LFW pairs, `<run>/eval-<name>` for a
    /// `.bin` or pairs file, so that the run's own evaluation and threshold stay; `runs/eval`
    /// without a run).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also copy `eval.json` here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn run_eval(a: EvalArgs) -> anyhow::Result<ExitCode> {
    if let Some(parent) = a.model.run.as_deref().filter(|r| crate::train::folds::state::FoldsState::is_parent(r)) {
        return eval_folds_parent(parent, &a);
    }
    let model = a.model.source();
    let pairs = if let Some(path) = &a.scores {
        PairSource::Scores(path.clone())
    } else if let Some(path) = &a.bin {
        PairSource::Bin(path.clone())
    } else if let Some(path) = &a.pairs {
        PairSource::PairsFile { lfw_dir: a.lfw.clone(), path: path.clone() }
    } else {
        let protocol = match (&a.protocol, &a.model.run) {
            (Some(p), _) => p.parse()?,
            (None, Some(run)) => RunDir::new(run).model_info()?.lfw_protocol().unwrap_or(Protocol::Pairs),
            (None, None) => Protocol::Pairs,
        };
        PairSource::Lfw { lfw_dir: a.lfw.clone(), protocol }
    };
    if model.is_none() && !matches!(pairs, PairSource::Scores(_)) {
        bail!("name a model (--run runs/NAME, or --weights FILE --backbone rNN), or give --scores FILE");
    }
    let mut opts = EvalOptions::new(model, pairs);
    opts.kernels = crate::kernel_env::from_env();
    opts.device = arcface_backbone::select_device(&a.device, opts.kernels.cuda_pool)?;
    opts.distance = a.distance;
    opts.embed = EmbedConfig { batch_size: a.batch_size, flip: !a.no_flip, progress: crate::progress::auto(), ..EmbedConfig::default() };
    opts.out_dir = a.out.clone().or_else(|| default_out(&a));
    let result = crate::compose::evaluate(&opts)?;
    let r = &result.report;
    println!("{}", arcface_eval::run::summary_markdown(r));
    println!("outputs in {}", result.out_dir.display());
    if let Some(json) = &a.json {
        let src = result.files[0].clone();
        std::fs::copy(&src, json).with_context(|| format!("copying {} to {}", src.display(), json.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `eval --run PARENT` on a View 2 multi-fold run: every finished fold again on its own
/// held-out pairs (other pair sets are for one fold's model).
fn eval_folds_parent(parent: &std::path::Path, a: &EvalArgs) -> anyhow::Result<ExitCode> {
    if a.protocol.is_some() || a.pairs.is_some() || a.bin.is_some() || a.out.is_some() || a.json.is_some() || a.no_flip || a.distance {
        bail!(
            "{} is a View 2 multi-fold run: `eval --run {}` alone re-evaluates each fold on its held-out \
             pairs; for other pairs or options evaluate one fold's model: eval --run {}/fold-K ...",
            parent.display(),
            parent.display(),
            parent.display()
        );
    }
    let kernels = crate::kernel_env::from_env();
    let device = arcface_backbone::select_device(&a.device, kernels.cuda_pool)?;
    crate::train::folds::eval_parent(parent, &crate::train::folds::Hardware { device, kernels })
}

/// Where `eval` writes without `--out`: the run's `eval/` only for LFW pairs (what `verify`
/// takes its threshold from), a sibling folder for other pair sets, `runs/eval` without a run.
fn default_out(a: &EvalArgs) -> Option<PathBuf> {
    let Some(run) = &a.model.run else {
        return Some(PathBuf::from("runs/eval"));
    };
    let other = a.bin.as_ref().or(a.pairs.as_ref())?;
    let stem = other.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    Some(run.join(format!("eval-{stem}")))
}

/// Arguments of `verify`.
#[derive(Args)]
pub struct VerifyArgs {
    /// First face photo.
    pub a: PathBuf,
    /// Second face photo.
    pub b: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Decision threshold on the cosine similarity (default: the run's evaluated threshold).
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Turn the flip test off.
    #[arg(long)]
    pub no_flip: bool,
    /// auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub device: String,
    #[command(flatten)]
    pub faces: crate::faces::FaceArgs,
}

pub fn run_verify(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let kernels = crate::kernel_env::from_env();
    let model = a.model.required()?;
    model.check_exists()?;
    let opts = VerifyOptions {
        model,
        image_a: a.a,
        image_b: a.b,
        input: a.faces.input()?,
        threshold: a.threshold,
        device: arcface_backbone::select_device(&a.device, kernels.cuda_pool)?,
        kernels,
        flip: !a.no_flip,
    };
    let r = verify(&opts)?;
    for note in r.photos.iter().filter_map(|p| p.note()) {
        eprintln!("{note}");
    }
    println!("similarity {:.4}", r.similarity);
    println!("threshold  {:.4} ({})", r.threshold, r.threshold_source);
    println!("{}", r.verdict());
    Ok(if r.same { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Arguments of `embed`.
#[derive(Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// An image, a folder of images, or an N x 3 x S x S f32 `.npy` (already normalized).
    #[arg(long)]
    pub input: PathBuf,
    /// Output `.npy` (N x D f32); for image inputs a `.txt` list of the files sits beside it.
    #[arg(long)]
    pub output: PathBuf,
    /// Flip test: L2-normalize(f(x) + f(flip(x))).
    #[arg(long)]
    pub flip: bool,
    /// L2-normalize each row.
    #[arg(long)]
    pub normalize: bool,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32, value_parser = crate::positive)]
    pub batch_size: usize,
    /// auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub device: String,
    #[command(flatten)]
    pub faces: crate::faces::FaceArgs,
}

pub fn run_embed(a: EmbedArgs) -> anyhow::Result<ExitCode> {
    let model: ModelSource = a.model.required()?;
    model.check_exists()?;
    // A .npy holds normalized pixels already: no photo, no face to find.
    let faces = if a.input.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")) {
        arcface_eval::FaceInput::Center
    } else {
        a.faces.input()?
    };
    let kernels = crate::kernel_env::from_env();
    let opts = EmbedOptions {
        model,
        input: a.input,
        output: a.output,
        faces,
        device: arcface_backbone::select_device(&a.device, kernels.cuda_pool)?,
        kernels,
        config: EmbedConfig {
            batch_size: a.batch_size,
            flip: a.flip,
            normalize: a.normalize || a.flip,
            progress: crate::progress::auto(),
        },
    };
    let r = embed_command(&opts)?;
    for note in r.photos.iter().filter_map(|p| p.note()) {
        eprintln!("{note}");
    }
    for s in &r.skipped {
        eprintln!("skipped {}: {}", s.path.display(), s.reason);
    }
    println!("wrote {} x {} embeddings to {}", r.count, r.dim, r.output.display());
    if let Some(list) = &r.list {
        println!("file list in {}", list.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `report`.
#[derive(Args)]
pub struct ReportArgs {
    /// Run folders (default: every folder under `runs/` holding a `metrics.jsonl`, and the
    /// folds of every View 2 multi-fold run there). One multi-fold run alone: its folds page.
    pub runs: Vec<PathBuf>,
    /// Output folder for `report.html` and `report.md`.
    #[arg(long, default_value = "runs/report")]
    pub out: PathBuf,
}

pub fn run_report(a: ReportArgs) -> anyhow::Result<ExitCode> {
    if let [parent] = a.runs.as_slice() {
        if crate::train::folds::state::FoldsState::is_parent(parent) {
            let html = crate::train::folds::report_parent(parent)?;
            println!("report of the View 2 folds of {}: {}", parent.display(), html.display());
            return Ok(ExitCode::SUCCESS);
        }
    }
    // A View 2 multi-fold run among others stands for its folds' sub-runs.
    let runs = crate::train::folds::expand_parents(if a.runs.is_empty() { discover_runs("runs".as_ref())? } else { a.runs });
    if runs.is_empty() {
        bail!("no runs found under runs/ (a run folder holds metrics.jsonl); name them explicitly");
    }
    let html = write_report(&runs, &a.out)?;
    println!("report of {} run(s): {}", runs.len(), html.display());
    Ok(ExitCode::SUCCESS)
}

fn discover_runs(root: &std::path::Path) -> anyhow::Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(root) else { return Ok(Vec::new()) };
    let mut runs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| RunDir::new(p).metrics_path().is_file() || crate::train::folds::state::FoldsState::is_parent(p))
        .collect();
    runs.sort();
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use clap::Parser;

    fn default_out(args: &[&str]) -> Option<PathBuf> {
        let cli = crate::Cli::try_parse_from(["arcface", "eval"].iter().chain(args)).unwrap();
        match cli.command {
            crate::Command::Eval(a) => super::default_out(&a),
            _ => panic!("not an eval command"),
        }
    }

    #[test]
    fn a_bin_or_pairs_file_does_not_replace_the_runs_own_evaluation() {
        assert_eq!(default_out(&["--run", "runs/x", "--bin", "data/lfw.bin"]), Some("runs/x/eval-lfw".into()));
        assert_eq!(default_out(&["--run", "runs/x", "--pairs", "my_pairs.txt"]), Some("runs/x/eval-my_pairs".into()));
        assert_eq!(default_out(&["--run", "runs/x"]), None, "the run's own eval/ for its LFW pairs");
        assert_eq!(default_out(&["--weights", "w.pth", "--backbone", "r50"]), Some("runs/eval".into()));
    }
}
