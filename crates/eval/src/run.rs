//! Evaluating a trained model (see [`crate::model`] for loading it): embed the images of a
//! pair protocol (LFW `dev`, `pairs`, `view2:k`, a pairs file, or an InsightFace `.bin`), or
//! read precomputed scores, then write `eval.json`, `summary.md`, `scores.tsv` and the ROC
//! and score-histogram plots (PNG and SVG) into the run's `eval/` folder or a chosen one.
//!
//! Folds: `pairs.txt` and pairs files use their own folds; `.bin` files and score files
//! without a `fold` column use contiguous splits (as InsightFace); `dev` (pairsDevTest:
//! 500 same pairs then 500 different ones) and a single `view2` fold are split into 10
//! folds per class in file order, so every fold holds both classes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use arcface_data::protocol::read_pairs;
use arcface_data::{Lfw, PairSet, Preprocess, Protocol};
use candle::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::bin::read_bin;
use crate::embed::{cosine_rows, embed_images, EmbedConfig, ImageSource};
use crate::error::{Error, Result};
use crate::metrics::{evaluate_scores, FoldMetrics, MetricsOptions, RocCurve, TarAtFar};
pub use crate::model::{load_model, load_model_with, read_model_info, LoadedModel, ModelInfo, ModelSource};
use crate::plots::{render, HistPlot, PlotTarget, RocPlot};
use crate::scores::{read_scores_tsv, write_scores_tsv, ScoreTable};

/// Which pairs to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub enum PairSource {
    /// An LFW protocol (`dev`, `pairs`, `view2:k`) in an extracted LFW folder.
    Lfw {
        /// Folder holding `lfw-deepfunneled/` and the protocol files.
        lfw_dir: PathBuf,
        /// Protocol name.
        protocol: String,
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
    /// Device name (`auto`, `cpu`, `cuda`).
    pub device: String,
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
    /// Also write PNG/SVG plots.
    pub plots: bool,
}

impl EvalOptions {
    /// Defaults: flip test, cosine, FAR 1e-3 and 1e-2, plots, device `auto`.
    pub fn new(model: Option<ModelSource>, pairs: PairSource) -> Self {
        Self {
            model,
            pairs,
            device: "auto".into(),
            kernels: Default::default(),
            out_dir: None,
            embed: EmbedConfig::default(),
            distance: false,
            far_targets: vec![1e-3, 1e-2],
            plots: true,
        }
    }
}

/// What `eval.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    /// Protocol or input name.
    pub protocol: String,
    /// Number of pairs.
    pub num_pairs: usize,
    /// Flip test used.
    pub flip: bool,
    /// Scores are distances.
    pub distance: bool,
    /// Mean fold accuracy.
    pub accuracy_mean: f64,
    /// Population std of fold accuracies.
    pub accuracy_std: f64,
    /// Area under the ROC.
    pub auc: f64,
    /// Equal error rate.
    pub eer: f64,
    /// Best global threshold (cosine, or distance when `distance`).
    pub threshold: f64,
    /// Accuracy at that threshold on all pairs.
    pub best_accuracy: f64,
    /// TAR at FAR, keyed by the FAR as written (`"0.001"`).
    pub tar_at_far: std::collections::BTreeMap<String, f64>,
    /// TAR at FAR with the FAR and threshold actually reached.
    pub tar_at_far_points: Vec<TarAtFar>,
    /// Same-person pairs.
    pub num_same: usize,
    /// Different-person pairs.
    pub num_different: usize,
    /// Per-fold thresholds and accuracies.
    pub folds: Vec<FoldMetrics>,
    /// The ROC curve.
    pub roc: RocCurve,
    /// Model facts, when a model was evaluated.
    pub model: Option<ModelInfo>,
    /// Seconds spent embedding.
    pub embed_seconds: f64,
    /// Images embedded per second (0 for score files).
    pub images_per_sec: f64,
}

/// Result of [`eval_run`].
#[derive(Debug, Clone)]
pub struct EvalResult {
    /// What was written to `eval.json`.
    pub report: EvalReport,
    /// The output folder.
    pub out_dir: PathBuf,
    /// The files written.
    pub files: Vec<PathBuf>,
}

/// Splits pairs into `k` folds per class in file order (fold = rank within class * k / count).
pub fn balanced_folds(same: &[bool], k: usize) -> Vec<usize> {
    let n_same = same.iter().filter(|&&s| s).count();
    let n_diff = same.len() - n_same;
    let (mut i_same, mut i_diff) = (0, 0);
    same.iter()
        .map(|&s| {
            let (i, n) = if s {
                (&mut i_same, n_same)
            } else {
                (&mut i_diff, n_diff)
            };
            let f = *i * k / n.max(1);
            *i += 1;
            f
        })
        .collect()
}

struct Scored {
    table: ScoreTable,
    protocol: String,
    embed_seconds: f64,
    images: usize,
}

fn data_err(e: arcface_data::DataError) -> Error {
    Error::Data(e.to_string())
}

fn score_pairset(
    model: &LoadedModel,
    set: &PairSet,
    opts: &EvalOptions,
    root: &Path,
) -> Result<(ScoreTable, f64)> {
    let start = Instant::now();
    let emb = embed_images(
        &model.net,
        &ImageSource::Paths(&set.images),
        &model.info.preprocess,
        &model.device,
        &opts.embed,
    )?;
    let secs = start.elapsed().as_secs_f64();
    let ia = Tensor::new(
        set.pairs.iter().map(|p| p.a as u32).collect::<Vec<_>>(),
        &Device::Cpu,
    )?;
    let ib = Tensor::new(
        set.pairs.iter().map(|p| p.b as u32).collect::<Vec<_>>(),
        &Device::Cpu,
    )?;
    let scores = cosine_rows(&emb.index_select(&ia, 0)?, &emb.index_select(&ib, 0)?)?;
    let name = |i: usize| {
        let p = &set.images[i];
        p.strip_prefix(root).unwrap_or(p).display().to_string()
    };
    let table = ScoreTable {
        same: set.pairs.iter().map(|p| p.same).collect(),
        scores,
        folds: Some(set.pairs.iter().map(|p| p.fold).collect()),
        names: set.pairs.iter().map(|p| (name(p.a), name(p.b))).collect(),
    };
    Ok((table, secs))
}

fn score(opts: &EvalOptions) -> Result<(Scored, Option<ModelInfo>, Option<PathBuf>)> {
    if let PairSource::Scores(path) = &opts.pairs {
        let table = read_scores_tsv(path)?;
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
    let device = arcface_backbone::select_device(&opts.device, opts.kernels.cuda_pool)?;
    let model = load_model_with(source, &device, &opts.kernels)?;
    let (mut table, protocol, secs, images) = match &opts.pairs {
        PairSource::Lfw { lfw_dir, protocol } => {
            let p: Protocol = protocol.parse().map_err(data_err)?;
            let lfw = Lfw::open(lfw_dir).map_err(data_err)?;
            let set = lfw.split(&p).map_err(data_err)?.test;
            let (mut t, secs) = score_pairset(&model, &set, opts, lfw_dir)?;
            if !matches!(p, Protocol::Pairs) {
                t.folds = Some(balanced_folds(&t.same, 10));
            }
            (t, p.to_string(), secs, set.images.len())
        }
        PairSource::PairsFile { lfw_dir, path } => {
            let file = read_pairs(path).map_err(data_err)?;
            let images = lfw_dir.join(arcface_data::lfw::IMAGES_DIR);
            let set =
                PairSet::from_pairs(&file.pairs, |r| images.join(&r.name).join(r.file_name()));
            let (mut t, secs) = score_pairset(&model, &set, opts, lfw_dir)?;
            if file.folds < 2 {
                t.folds = Some(balanced_folds(&t.same, 10));
            }
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
            let pre = bin_preprocess(&bin.images, model.info.preprocess.size, path)?;
            let start = Instant::now();
            let emb = embed_images(
                &model.net,
                &ImageSource::Encoded(&bin.images),
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

/// The preprocessing for a `.bin`: whole image (size read from the first one) to `size`.
fn bin_preprocess(images: &[Vec<u8>], size: usize, path: &Path) -> Result<Preprocess> {
    let first = images
        .first()
        .ok_or_else(|| Error::format(path, "no images"))?;
    let (w, h) = image::ImageReader::new(std::io::Cursor::new(first))
        .with_guessed_format()
        .map_err(|e| Error::format(path, format!("image 0: {e}")))?
        .into_dimensions()
        .map_err(|e| Error::format(path, format!("image 0: {e}")))?;
    Ok(Preprocess {
        crop: arcface_data::CropBox {
            x: 0,
            y: 0,
            width: w,
            height: h,
        },
        size,
    })
}

/// Evaluates a model (or a score file) and writes `eval.json`, `summary.md`, `scores.tsv`
/// and plots into the output folder.
pub fn eval_run(opts: &EvalOptions) -> Result<EvalResult> {
    let (scored, model_info, run_dir) = score(opts)?;
    let out_dir = match (&opts.out_dir, &run_dir) {
        (Some(d), _) => d.clone(),
        (None, Some(r)) => r.join("eval"),
        (None, None) => {
            return Err(Error::Invalid(
                "no output folder: pass one, or evaluate a run folder".into(),
            ))
        }
    };
    std::fs::create_dir_all(&out_dir).map_err(|e| Error::io(&out_dir, e))?;
    let t = &scored.table;
    // Small sets (tests, toy .bin files) get fewer contiguous folds rather than an error.
    let num_folds = t.scores.len().clamp(2, 10);
    let mopts = MetricsOptions {
        distance: opts.distance,
        num_folds,
        far_targets: opts.far_targets.clone(),
    };
    let metrics = evaluate_scores(&t.scores, &t.same, t.folds.as_deref(), &mopts)?;
    let report = EvalReport {
        protocol: scored.protocol.clone(),
        num_pairs: metrics.num_pairs,
        flip: opts.embed.flip && model_info.is_some(),
        distance: opts.distance,
        accuracy_mean: metrics.accuracy_mean,
        accuracy_std: metrics.accuracy_std,
        auc: metrics.auc,
        eer: metrics.eer,
        threshold: metrics.threshold,
        best_accuracy: metrics.best_accuracy,
        tar_at_far: metrics
            .tar_at_far
            .iter()
            .map(|t| (format!("{}", t.far_target), t.tar))
            .collect(),
        tar_at_far_points: metrics.tar_at_far,
        num_same: metrics.num_same,
        num_different: metrics.num_different,
        folds: metrics.folds,
        roc: metrics.roc,
        model: model_info,
        embed_seconds: scored.embed_seconds,
        images_per_sec: if scored.embed_seconds > 0.0 {
            scored.images as f64 / scored.embed_seconds
        } else {
            0.0
        },
    };
    let mut files = Vec::new();
    let json_path = out_dir.join("eval.json");
    let json = serde_json::to_string_pretty(&report)
        .map_err(|e| Error::format(&json_path, e.to_string()))?;
    std::fs::write(&json_path, json).map_err(|e| Error::io(&json_path, e))?;
    files.push(json_path);
    let tsv = out_dir.join("scores.tsv");
    write_scores_tsv(&tsv, t)?;
    files.push(tsv);
    let md = out_dir.join("summary.md");
    std::fs::write(&md, summary_markdown(&report)).map_err(|e| Error::io(&md, e))?;
    files.push(md);
    if opts.plots {
        let what = if opts.distance {
            "squared L2 distance"
        } else {
            "cosine similarity"
        };
        for ext in ["png", "svg"] {
            let roc = out_dir.join(format!("roc.{ext}"));
            let title = format!("ROC - {} (AUC {:.4})", report.protocol, report.auc);
            render(
                &RocPlot {
                    title,
                    curves: vec![("model".into(), &report.roc)],
                },
                (800, 600),
                PlotTarget::File(&roc),
            )?;
            files.push(roc);
            let hist = out_dir.join(format!("scores_hist.{ext}"));
            let plot = HistPlot {
                title: format!("Pair scores - {}", report.protocol),
                scores: &t.scores,
                same: &t.same,
                threshold: Some(report.threshold),
                bins: 50,
                x_label: what.into(),
            };
            render(&plot, (800, 600), PlotTarget::File(&hist))?;
            files.push(hist);
        }
    }
    Ok(EvalResult {
        report,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_folds_split_each_class() {
        let same: Vec<bool> = (0..40).map(|i| i < 20).collect();
        let f = balanced_folds(&same, 10);
        assert_eq!(&f[..4], &[0, 0, 1, 1]);
        assert_eq!(&f[20..24], &[0, 0, 1, 1]);
        assert_eq!(f[39], 9);
    }
}
