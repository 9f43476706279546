//! `arcface train --protocol view2 --folds all|0,3,7`: LFW View 2 as one resumable run. One
//! model per held-out fold k, trained on the people of the other folds of `people.txt` and
//! evaluated on fold k of `pairs.txt` exactly as `eval --protocol view2:k` does (the fold's
//! pairs split in ten per class, each part scored with the threshold chosen on the other
//! nine); the result is the mean +- population std of the fold accuracies (DESIGN.md,
//! "Protocols").
//!
//! Layout: a parent folder (default `runs/<name>-view2`) with `summary.json` (the recipe, the
//! finished folds, the fold in progress, the aggregate; see [`state`]), one ordinary run
//! folder per fold (`fold-K/`, written by arcface-train and evaluated into `fold-K/eval/`),
//! and the folds page (`report.html`, `report.md`, `folds_roc.png`). Rerunning the command
//! skips finished folds and resumes the interrupted one from its checkpoint (arcface-train's
//! exact resume); a different recipe in the same parent is refused.

pub mod state;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use arcface_backbone::KernelOptions;
use arcface_data::lfw::VIEW2_FOLDS;
use arcface_data::Protocol;
use arcface_eval::{EvalOptions, ModelSource, PairSource, RunDir};
use arcface_train::config::DataSource;
use arcface_train::run::load_split;
use arcface_train::{train_with_stop, RunOptions, StopFlag, TrainConfig};
use candle::Device;

use state::{first_difference, fold_dir, FoldResult, FoldsState};

/// Parses `--folds`: `all` (every fold of the LFW folder's `people.txt`, `lfw_folds`) or
/// distinct fold numbers separated by commas, kept in the order given.
pub fn parse_folds(
    text: &str,
    lfw_folds: impl FnOnce() -> anyhow::Result<usize>,
) -> anyhow::Result<Vec<usize>> {
    let text = text.trim();
    if text == "all" {
        return Ok((0..lfw_folds()?.min(VIEW2_FOLDS)).collect());
    }
    let mut folds = Vec::new();
    for part in text.split(',').map(str::trim) {
        let Ok(k) = part.parse::<usize>() else {
            bail!(
                "--folds {text:?}: {part:?} is not a fold number; expected `all` or folds 0..{} \
                 separated by commas (e.g. --folds 0,3,7)",
                VIEW2_FOLDS - 1
            );
        };
        if k >= VIEW2_FOLDS {
            bail!(
                "--folds {text:?}: fold {k} is out of range (View 2 has folds 0..{})",
                VIEW2_FOLDS - 1
            );
        }
        if folds.contains(&k) {
            bail!("--folds {text:?}: fold {k} is listed twice");
        }
        folds.push(k);
    }
    Ok(folds)
}

/// The number of folds of `people.txt` in `lfw_dir` (10 in the real LFW).
pub fn people_folds(lfw_dir: &Path) -> anyhow::Result<usize> {
    let path = lfw_dir.join("people.txt");
    Ok(arcface_data::protocol::read_people_folds(&path)?.len())
}

/// Checks that `cfg` can run View 2 folds; returns it with protocol `view2:0`, the recipe
/// every fold shares.
pub fn recipe(mut cfg: TrainConfig) -> anyhow::Result<TrainConfig> {
    if cfg.data.source == DataSource::Folder {
        bail!("--folds runs LFW View 2: it does not go with --dataset FOLDER (or source = \"folder\")");
    }
    if cfg.data.protocol.name() != "view2" {
        bail!(
            "--folds goes with --protocol view2 (the protocol is {}): pass --protocol view2",
            cfg.data.protocol.name()
        );
    }
    cfg.data.protocol = Protocol::View2 { fold: 0 };
    Ok(cfg)
}

/// The device and kernels every fold trains and evaluates on.
pub struct Hardware {
    /// Device.
    pub device: Device,
    /// Kernels.
    pub kernels: KernelOptions,
}

/// Trains and evaluates `folds` of `recipe` into `parent` (see the module docs).
pub fn run(
    recipe: &TrainConfig,
    folds: &[usize],
    parent: &Path,
    hw: &Hardware,
) -> anyhow::Result<ExitCode> {
    let text = recipe.to_toml();
    let mut state = open_parent(parent, &recipe.name, &text)?;
    state.requested = folds.to_vec();
    state.write(parent)?;
    let stop = StopFlag::new();
    stop.install()?;
    for &k in folds {
        if state.done(k).is_some()
            && RunDir::new(fold_dir(parent, k))
                .eval_summary_path()
                .is_file()
        {
            println!("fold {k}: finished earlier, skipped");
            continue;
        }
        let cfg = fold_config(recipe, k);
        let dir = fold_dir(parent, k);
        state.running = Some(k);
        state.write(parent)?;
        let run = RunDir::new(&dir);
        let mut steps = 0;
        if run.final_weights_path().is_file() {
            println!("fold {k}: trained earlier, evaluating");
        } else {
            // A started sub-run (its resolved config is written first) continues from its
            // latest checkpoint, or from step 0 when it had none yet.
            let resume = run.config_path().is_file();
            println!(
                "fold {k}: {} {}",
                if resume { "resuming" } else { "training" },
                dir.display()
            );
            let options = RunOptions {
                out: dir.clone(),
                resume,
                device: hw.device.clone(),
                kernels: hw.kernels.clone(),
                progress: crate::progress::auto(),
            };
            let summary = train_with_stop(&cfg, &options, &stop)
                .with_context(|| format!("training fold {k}"))?;
            if summary.interrupted {
                println!("interrupted in fold {k} (checkpoint written); rerun the same command to continue");
                return Ok(ExitCode::from(super::INTERRUPTED));
            }
            steps = summary.steps;
        }
        let result = evaluate_fold(&cfg, k, parent, hw, steps)?;
        println!(
            "fold {k}: accuracy {:.2}%, AUC {:.4}, EER {:.2}%",
            100.0 * result.accuracy,
            result.auc,
            100.0 * result.eer
        );
        state.record(result);
        state.write(parent)?;
    }
    finish(&state, parent)?;
    Ok(ExitCode::SUCCESS)
}

/// The recipe with fold `k` held out.
fn fold_config(recipe: &TrainConfig, fold: usize) -> TrainConfig {
    let mut cfg = recipe.clone();
    cfg.data.protocol = Protocol::View2 { fold };
    cfg
}

/// Reads the parent's state, refusing another recipe or a folder that is something else;
/// a missing or empty folder starts a new state.
fn open_parent(parent: &Path, name: &str, recipe: &str) -> anyhow::Result<FoldsState> {
    if FoldsState::path(parent).is_file() {
        let state = FoldsState::read(parent)?;
        if let Some((ours, theirs)) = first_difference(recipe, &state.recipe) {
            bail!(
                "{} holds a View 2 run of another configuration (it has `{theirs}` where this \
                 command has `{ours}`); rerun it with its own config and flags (its recipe is \
                 in summary.json, each fold's in fold-K/config.toml), or pass another --out",
                parent.display()
            );
        }
        return Ok(state);
    }
    let occupied = std::fs::read_dir(parent)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if occupied {
        bail!(
            "{} already exists and is not a View 2 multi-fold run (no {}): choose another --out",
            parent.display(),
            state::FILE
        );
    }
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    Ok(FoldsState::new(name, recipe.to_string()))
}

/// Evaluates the finished sub-run of fold `k` on its held-out pairs into `fold-K/eval/`.
fn evaluate_fold(
    cfg: &TrainConfig,
    k: usize,
    parent: &Path,
    hw: &Hardware,
    steps: u64,
) -> anyhow::Result<FoldResult> {
    let dir = fold_dir(parent, k);
    let pairs = PairSource::Lfw {
        lfw_dir: cfg.data.lfw_dir(),
        protocol: cfg.data.protocol,
    };
    let mut opts = EvalOptions::new(Some(ModelSource::Run(dir.clone())), pairs);
    opts.device = hw.device.clone();
    opts.kernels = hw.kernels.clone();
    opts.embed.batch_size = cfg.train.eval_batch_size;
    opts.embed.progress = crate::progress::auto();
    let r = crate::compose::evaluate(&opts)
        .with_context(|| format!("evaluating fold {k}"))?
        .report;
    let (train_set, _) = load_split(cfg)?;
    Ok(FoldResult {
        fold: k,
        run: format!("fold-{k}"),
        accuracy: r.accuracy_mean,
        accuracy_std_within: r.accuracy_std,
        auc: r.auc,
        eer: r.eer,
        threshold: r.threshold,
        num_pairs: r.num_pairs,
        train_images: train_set.len(),
        train_identities: train_set.num_classes(),
        steps,
    })
}

/// Prints the table and the mean +- std, and writes the folds page.
fn finish(state: &FoldsState, parent: &Path) -> anyhow::Result<()> {
    let rows = state.rows(parent);
    let table = arcface_report::folds::folds_table(&rows);
    let header: Vec<String> = arcface_report::folds::FOLDS_HEADER
        .iter()
        .map(|h| h.to_string())
        .collect();
    let all: Vec<&Vec<String>> = std::iter::once(&header).chain(table.iter()).collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| all.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for row in &all {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:>w$}"))
            .collect();
        println!("{}", cells.join("  "));
    }
    if let Some(agg) = &state.summary {
        println!(
            "LFW View 2 over {} fold(s): accuracy {:.2}% +- {:.2}%",
            agg.folds,
            100.0 * agg.accuracy.mean,
            100.0 * agg.accuracy.std
        );
    }
    let pending = state.pending();
    if !pending.is_empty() {
        println!("not finished: fold(s) {pending:?}");
    }
    println!("summary: {}", FoldsState::path(parent).display());
    if !rows.is_empty() {
        let html = write_page(state, parent)?;
        println!("report: {}", html.display());
    }
    Ok(())
}

/// (Re)writes the folds page of `parent` from its state.
pub fn write_page(state: &FoldsState, parent: &Path) -> anyhow::Result<PathBuf> {
    let rows = state.rows(parent);
    let title = format!(
        "{}: LFW View 2 ({})",
        RunDir::new(parent).name(),
        state.name
    );
    let page = arcface_report::FoldsPage {
        title,
        rows: &rows,
        pending: state.pending(),
    };
    Ok(arcface_report::write_folds_report(&page, parent)?)
}

/// `eval --run PARENT`: re-evaluates every finished fold on its held-out pairs (with its own
/// config), then rewrites `summary.json` and the page.
pub fn eval_parent(parent: &Path, hw: &Hardware) -> anyhow::Result<ExitCode> {
    let mut state = FoldsState::read(parent)?;
    if state.folds.is_empty() {
        bail!(
            "{}: no fold has finished training yet; run the `train ... --folds` command that \
             started it to continue",
            parent.display()
        );
    }
    for k in state.folds.iter().map(|f| f.fold).collect::<Vec<_>>() {
        let cfg = TrainConfig::from_toml_file(RunDir::new(fold_dir(parent, k)).config_path())?;
        let steps = state.done(k).map_or(0, |f| f.steps);
        let result = evaluate_fold(&cfg, k, parent, hw, steps)?;
        state.record(result);
        state.write(parent)?;
    }
    finish(&state, parent)?;
    Ok(ExitCode::SUCCESS)
}

/// `report PARENT`: (re)writes the folds page inside the parent.
pub fn report_parent(parent: &Path) -> anyhow::Result<PathBuf> {
    let state = FoldsState::read(parent)?;
    if state.folds.is_empty() {
        bail!(
            "{}: no fold has been evaluated yet; nothing to report",
            parent.display()
        );
    }
    write_page(&state, parent)
}

/// The run folders a cross-run report should read: a multi-fold parent stands for its
/// finished folds' sub-runs.
pub fn expand_parents(runs: Vec<PathBuf>) -> Vec<PathBuf> {
    runs.into_iter()
        .flat_map(|r| match FoldsState::read(&r) {
            Ok(s) => s.folds.iter().map(|f| r.join(&f.run)).collect(),
            Err(_) => vec![r],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Vec<usize>> {
        parse_folds(text, || Ok(10))
    }

    #[test]
    fn folds_lists() {
        assert_eq!(parse("all").unwrap(), (0..10).collect::<Vec<_>>());
        assert_eq!(parse_folds("all", || Ok(2)).unwrap(), vec![0, 1]);
        assert_eq!(parse("0,3,7").unwrap(), vec![0, 3, 7]);
        assert_eq!(parse(" 7, 3 ").unwrap(), vec![7, 3]);
        let err = |t: &str| parse(t).unwrap_err().to_string();
        assert!(err("10").contains("out of range"), "{}", err("10"));
        assert!(err("x").contains("not a fold number"), "{}", err("x"));
        assert!(err("1,1").contains("listed twice"), "{}", err("1,1"));
        assert!(err("").contains("not a fold number"));
        assert!(err("1,,2").contains("not a fold number"));
    }
}
