//! Evaluating a trained model (see [`crate::model`] for loading it): embed the images of a
//! pair protocol (LFW `dev`, `pairs`, `view2:k`, a pairs file, or an InsightFace `.bin`), or
//! read precomputed scores, then write `eval.json`, `summary.md` and `scores.tsv` into the
//! run's `eval/` folder or a chosen one (plots are arcface-report's, drawn from the result).
//!
//! Folds: LFW protocols and pairs files follow [`crate::pairs::pair_folds`]; score files use
//! their `fold` column, or else folds balanced per class ([`crate::pairs::balanced_folds`]);
//! `.bin` files use contiguous splits (as InsightFace, whose `.bin` pairs alternate classes
//! fold by fold).

use std::path::{Path, PathBuf};
use std::time::Instant;

use arcface_data::protocol::read_pairs;
use arcface_data::{Lfw, PairSet, Preprocess, Protocol};
use candle::{Device, Tensor};

use crate::bin::{read_bin, BinSet};
use crate::embed::{cosine_rows, embed_images, EmbedConfig, ImageSource};
use crate::error::{Error, Result};
use crate::run_dir::RunDir;
use crate::metrics::{evaluate_scores, MetricsOptions};
pub use crate::model::{load_model, load_model_with, LoadedModel, ModelSource};
use crate::pairs::{balanced_folds, pair_folds, score_pairs};
pub use crate::run_dir::{EvalReport, ModelInfo};
use crate::scores::{read_scores_tsv, write_scores_tsv, ScoreTable};

/// Which pairs to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub enum PairSource {
    /// An LFW protocol in an extracted LFW folder.
    Lfw {
        /// Folder holding `lfw-deepfunneled/` and the protocol files.
        lfw_dir: PathBuf,
        /// The protocol.
        protocol: Protocol,
    },
    /// A file in `pairs.txt` format over the images of an LFW folder.
    PairsFile {
        /// Folder holding `lfw-deepfunneled/`.
        lfw_dir: PathBuf,
        /// The pairs file.
        path: PathBuf,
    },
    /// An InsightFace verification `.bin` (aligned 112x112 faces: no crop).
    Bin(PathBuf),
    /// Precomputed scores (TSV with `same`, `score`, optional `fold`); no model needed.
    Scores(PathBuf),
}

/// Options of [`eval_run`].
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// The model (ignored for [`PairSource::Scores`]).
    pub model: Option<ModelSource>,
    /// The pairs.
    pub pairs: PairSource,
    /// The device to embed on.
    pub device: Device,
    /// The kernels the model runs on (the defaults unless the binary chose others).
    pub kernels: arcface_backbone::KernelOptions,
    /// Output folder; default `<run>/eval`.
    pub out_dir: Option<PathBuf>,
    /// Embedding settings (flip test on by default).
    pub embed: EmbedConfig,
    /// Score pairs by squared L2 distance of unit embeddings (2 - 2cos) instead of cosine;
    /// for score files: the scores are distances.
    pub distance: bool,
    /// FAR values for TAR@FAR.
    pub far_targets: Vec<f64>,
}

impl EvalOptions {
    /// Defaults: flip test, cosine, FAR 1e-3 and 1e-2, on the CPU.
    pub fn new(model: Option<ModelSource>, pairs: PairSource) -> Self {
        Self {
            model,
            pairs,
            device: Device::Cpu,
            kernels: Default::default(),
            out_dir: None,
            embed: EmbedConfig::default(),
            distance: false,
            far_targets: vec![1e-3, 1e-2],
        }
    }
}

/// Result of [`eval_run`].
#[derive(Debug, Clone)]
pub struct EvalResult {
    /// What was written to `eval.json`.
    pub report: EvalReport,
    /// The scored pairs (written to `scores.tsv`).
    pub scores: ScoreTable,
    /// The output folder.
    pub out_dir: PathBuf,
    /// The files written.
    pub files: Vec<PathBuf>,
}

struct Scored {
    table: ScoreTable,
    protocol: String,
    embed_seconds: f64,
    images: usize,
}

fn score_pairset(
    model: &LoadedModel,
    set: &PairSet,
    opts: &EvalOptions,
    root: &Path,
) -> Result<(ScoreTable, f64)> {
    if model.info.preprocess.align == arcface_data::Align::Mtcnn {
        // The run was trained on aligned faces: `<data dir>/mtcnn` beside `<data dir>/lfw`.
        let data_dir = root.parent().unwrap_or(Path::new("."));
        arcface_data::faces::load_detector(&data_dir.join("mtcnn"))?;
    }
    let start = Instant::now();
    let emb = embed_images(
        &model.net,
        &ImageSource::Paths(&set.images),
        &model.info.preprocess,
        &model.device,
        &opts.embed,
    )?;
    let secs = start.elapsed().as_secs_f64();
    let scores = score_pairs(&emb, &set.pairs)?;
    let name = |i: usize| {
        let p = &set.images[i];
        p.strip_prefix(root).unwrap_or(p).display().to_string()
    };
    let table = ScoreTable {
        same: set.pairs.iter().map(|p| p.same).collect(),
        scores,
        folds: Some(pair_folds(&set.pairs)),
        names: set.pairs.iter().map(|p| (name(p.a), name(p.b))).collect(),
    };
    Ok((table, secs))
}

fn score(opts: &EvalOptions) -> Result<(Scored, Option<ModelInfo>, Option<PathBuf>)> {
    if let PairSource::Scores(path) = &opts.pairs {
        let mut table = read_scores_tsv(path)?;
        // Without a `fold` column, folds are balanced per class in file order, as for LFW:
        // contiguous folds of a file sorted by class (as eval's own scores.tsv is) would each
        // hold one class, and no fold could choose a threshold.
        if table.folds.is_none() {
            table.folds = Some(balanced_folds(&table.same, table.same.len().clamp(2, 10)));
        }
        let protocol = format!("scores:{}", file_name(path));
        return Ok((
            Scored {
                table,
                protocol,
                embed_seconds: 0.0,
                images: 0,
            },
            None,
            None,
        ));
    }
    let source = opts
        .model
        .as_ref()
        .ok_or_else(|| Error::Invalid("a model is needed to embed images".into()))?;
    let model = load_model_with(source, &opts.device, &opts.kernels)?;
    let (mut table, protocol, secs, images) = match &opts.pairs {
        PairSource::Lfw { lfw_dir, protocol } => {
            let set = Lfw::open(lfw_dir)?.split(protocol)?.test;
            let (t, secs) = score_pairset(&model, &set, opts, lfw_dir)?;
            (t, protocol.to_string(), secs, set.images.len())
        }
        PairSource::PairsFile { lfw_dir, path } => {
            let file = read_pairs(path)?;
            let images = lfw_dir.join(arcface_data::lfw::IMAGES_DIR);
            let set =
                PairSet::from_pairs(&file.pairs, |r| images.join(&r.name).join(r.file_name()));
            let (t, secs) = score_pairset(&model, &set, opts, lfw_dir)?;
            (
                t,
                format!("pairs:{}", file_name(path)),
                secs,
                set.images.len(),
            )
        }
        PairSource::Bin(path) => {
            let bin = read_bin(path)?;
            // .bin faces are already aligned: keep the whole image, resize only if needed.
            let pre = bin_preprocess(&bin, model.info.preprocess.size, path)?;
            let start = Instant::now();
            let emb = embed_images(
                &model.net,
                &ImageSource::Encoded(&bin.images, path),
                &pre,
                &model.device,
                &opts.embed,
            )?;
            let secs = start.elapsed().as_secs_f64();
            let n = bin.num_pairs();
            let even = Tensor::arange_step(0u32, 2 * n as u32, 2, &Device::Cpu)?;
            let odd = Tensor::arange_step(1u32, 2 * n as u32, 2, &Device::Cpu)?;
            let scores = cosine_rows(&emb.index_select(&even, 0)?, &emb.index_select(&odd, 0)?)?;
            let t = ScoreTable {
                same: bin.issame.clone(),
                scores,
                folds: None,
                names: Vec::new(),
            };
            (
                t,
                format!("bin:{}", file_name(path)),
                secs,
                bin.images.len(),
            )
        }
        PairSource::Scores(_) => unreachable!("handled above"),
    };
    if opts.distance {
        table.scores.iter_mut().for_each(|s| *s = 2.0 - 2.0 * *s);
    }
    let scored = Scored {
        table,
        protocol,
        embed_seconds: secs,
        images,
    };
    Ok((scored, Some(model.info.clone()), model.run_dir.clone()))
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The preprocessing for a `.bin`: the whole image (one size for all, checked) to `size`.
fn bin_preprocess(set: &BinSet, size: usize, path: &Path) -> Result<Preprocess> {
    let (width, height) = set.image_size(path)?;
    Ok(Preprocess {
        crop: arcface_data::CropBox {
            x: 0,
            y: 0,
            width,
            height,
        },
        size,
        align: arcface_data::Align::Center,
    })
}

/// Evaluates a model (or a score file) and writes `eval.json`, `summary.md` and
/// `scores.tsv` into the output folder.
pub fn eval_run(opts: &EvalOptions) -> Result<EvalResult> {
    let (scored, model_info, run_dir) = score(opts)?;
    let out_dir = match (&opts.out_dir, &run_dir) {
        (Some(d), _) => d.clone(),
        (None, Some(r)) => RunDir::new(r).eval_dir(),
        (None, None) => {
            return Err(Error::Invalid(
                "no output folder: pass one, or evaluate a run folder".into(),
            ))
        }
    };
    let t = scored.table;
    // Small sets (tests, toy .bin files) get fewer contiguous folds rather than an error.
    let num_folds = t.scores.len().clamp(2, 10);
    let mopts = MetricsOptions {
        distance: opts.distance,
        num_folds,
        far_targets: opts.far_targets.clone(),
    };
    let metrics = evaluate_scores(&t.scores, &t.same, t.folds.as_deref(), &mopts)?;
    let flip = opts.embed.flip && model_info.is_some();
    let report = EvalReport::from_metrics(
        scored.protocol,
        metrics,
        flip,
        model_info,
        scored.embed_seconds,
        scored.images,
    );
    let mut files = vec![report.write_in(&out_dir)?];
    let tsv = out_dir.join("scores.tsv");
    write_scores_tsv(&tsv, &t)?;
    files.push(tsv);
    let md = out_dir.join("summary.md");
    std::fs::write(&md, summary_markdown(&report)).map_err(|e| Error::io(&md, e))?;
    files.push(md);
    Ok(EvalResult {
        report,
        scores: t,
        out_dir,
        files,
    })
}

/// The human-readable summary written next to `eval.json`.
pub fn summary_markdown(r: &EvalReport) -> String {
    let mut s = format!("# Evaluation: {}\n\n", r.protocol);
    s += "| metric | value |\n|---|---|\n";
    s += &format!(
        "| pairs | {} ({} same, {} different) |\n",
        r.num_pairs, r.num_same, r.num_different
    );
    s += &format!(
        "| accuracy ({}-fold) | {:.2}% +- {:.2}% |\n",
        r.folds.len(),
        100.0 * r.accuracy_mean,
        100.0 * r.accuracy_std
    );
    s += &format!("| AUC | {:.4} |\n| EER | {:.2}% |\n", r.auc, 100.0 * r.eer);
    for t in &r.tar_at_far_points {
        s += &format!(
            "| TAR @ FAR={} | {:.2}% (FAR {:.4}) |\n",
            t.far_target,
            100.0 * t.tar,
            t.far
        );
    }
    s += &format!(
        "| best threshold ({}) | {:.4} (accuracy {:.2}%) |\n",
        if r.distance { "distance" } else { "cosine" },
        r.threshold,
        100.0 * r.best_accuracy
    );
    s += &format!("| flip test | {} |\n", r.flip);
    if r.images_per_sec > 0.0 {
        s += &format!("| embedding speed | {:.1} images/s |\n", r.images_per_sec);
    }
    s += "\n| fold | pairs | threshold | accuracy |\n|---|---|---|---|\n";
    for f in &r.folds {
        s += &format!(
            "| {} | {} | {:.4} | {:.2}% |\n",
            f.fold,
            f.num_pairs,
            f.threshold,
            100.0 * f.accuracy
        );
    }
    s += "\n![ROC](roc.png)\n\n![scores](scores_hist.png)\n";
    s
}
