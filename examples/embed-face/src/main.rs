//! Using arcface-rs from another project: only `arcface-backbone` (the model) and
//! `arcface-eval` (the metrics), no training stack.
//!
//! ```sh
//! cargo run --release -p embed-face -- [--weights model.safetensors --backbone r18
//!     --width 16 --input-size 48 --features 128] face1.jpg face2.jpg [...]
//! ```
//!
//! Each photo is taken to be an aligned face: it is resized to the model's input side, scaled to
//! [-1, 1] and embedded with the flip test (InsightFace's `L2(f(x) + f(flip(x)))`). The program
//! prints every pair's cosine similarity; with `--pairs FILE` (lines `a.jpg b.jpg 1|0`) it
//! also prints the cross-validated verification accuracy (10 folds, fewer for few pairs), AUC and EER of those pairs. Without
//! `--weights` the model is InsightFace's seeded initialization: the numbers then show the
//! plumbing, not a trained model.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use arcface_backbone::{init_varmap, load_model, Config, IResNet};
use arcface_eval::metrics::{evaluate_scores, MetricsOptions};
use candle::{Device, Tensor};
use candle_nn::{ModuleT, VarMap};

fn main() -> anyhow::Result<()> {
    let args = Args::parse(std::env::args().skip(1))?;
    let device = Device::Cpu;
    let model = match &args.weights {
        Some(path) => load_model(&args.config, path, &device)?.0,
        None => init_varmap(&args.config, &VarMap::new(), &device, 42)?,
    };
    let mut images: Vec<PathBuf> = args.images.clone();
    let pairs = match &args.pairs {
        Some(file) => read_pairs(file)?,
        None => vec![],
    };
    for (a, b, _) in &pairs {
        images.extend([a.clone(), b.clone()]);
    }
    images.sort();
    images.dedup();

    let embeddings: Vec<Vec<f32>> =
        images.iter().map(|p| embed(&model, &args.config, p, &device)).collect::<anyhow::Result<_>>()?;
    let index = |p: &Path| images.iter().position(|q| q == p).expect("every pair image was embedded");
    println!("{} faces, {}-d embeddings", images.len(), args.config.num_features);
    for i in 0..args.images.len() {
        for j in i + 1..args.images.len() {
            let (a, b) = (index(&args.images[i]), index(&args.images[j]));
            println!("{}  {}  cosine {:.4}", images[a].display(), images[b].display(), dot(&embeddings[a], &embeddings[b]));
        }
    }
    if !pairs.is_empty() {
        let scores: Vec<f64> = pairs.iter().map(|(a, b, _)| dot(&embeddings[index(a)], &embeddings[index(b)]) as f64).collect();
        let same: Vec<bool> = pairs.iter().map(|p| p.2).collect();
        // Ten folds as InsightFace, fewer for a handful of pairs.
        let opts = MetricsOptions { num_folds: pairs.len().clamp(2, 10), ..MetricsOptions::default() };
        let m = evaluate_scores(&scores, &same, None, &opts)?;
        println!(
            "{} pairs: accuracy {:.2}% +- {:.2}, AUC {:.4}, EER {:.4}, threshold {:.4}",
            m.num_pairs,
            100.0 * m.accuracy_mean,
            100.0 * m.accuracy_std,
            m.auc,
            m.eer,
            m.threshold
        );
    }
    Ok(())
}

/// The L2-normalized flip-test embedding of the face in `path`.
fn embed(model: &IResNet, config: &Config, path: &Path, device: &Device) -> anyhow::Result<Vec<f32>> {
    let side = config.input_size as u32;
    let img = image::open(path).with_context(|| format!("decoding {}", path.display()))?;
    let rgb = img.resize_exact(side, side, image::imageops::FilterType::Triangle).to_rgb8();
    let pixels: Vec<f32> = rgb.into_raw().into_iter().map(|v| (v as f32 - 127.5) / 127.5).collect();
    let side = side as usize;
    let x = Tensor::from_vec(pixels, (1, side, side, 3), device)?.permute((0, 3, 1, 2))?.contiguous()?;
    let both = Tensor::cat(&[&x, &x.flip(&[3])?], 0)?;
    let sum = model.forward_t(&both, false)?.sum_keepdim(0)?;
    let emb = arcface_eval::l2_normalize(&sum)?;
    Ok(emb.flatten_all()?.to_vec1::<f32>()?)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `a.jpg b.jpg 1` (same person) or `... 0` per line.
fn read_pairs(path: &Path) -> anyhow::Result<Vec<(PathBuf, PathBuf, bool)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut pairs = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let same = match f.as_slice() {
            [_, _, "1"] => true,
            [_, _, "0"] => false,
            _ => bail!("{}:{}: expected `a.jpg b.jpg 1|0`, got {line:?}", path.display(), n + 1),
        };
        pairs.push((f[0].into(), f[1].into(), same));
    }
    Ok(pairs)
}

/// The command line: a backbone shape, optional weights and pairs, the images.
struct Args {
    config: Config,
    weights: Option<PathBuf>,
    pairs: Option<PathBuf>,
    images: Vec<PathBuf>,
}

impl Args {
    fn parse(mut it: impl Iterator<Item = String>) -> anyhow::Result<Args> {
        let mut config = Config::ir50();
        let (mut weights, mut pairs, mut images) = (None, None, vec![]);
        while let Some(a) = it.next() {
            let mut value = || it.next().with_context(|| format!("{a} needs a value"));
            match a.as_str() {
                "--backbone" => {
                    let name = value()?;
                    config = Config::from_name(&name).with_context(|| format!("unknown backbone {name}"))?;
                }
                "--width" => config.width = value()?.parse()?,
                "--input-size" => config.input_size = value()?.parse()?,
                "--features" => config.num_features = value()?.parse()?,
                "--weights" => weights = Some(value()?.into()),
                "--pairs" => pairs = Some(value()?.into()),
                _ => images.push(a.into()),
            }
        }
        config.validate().map_err(anyhow::Error::msg)?;
        if images.is_empty() && pairs.is_none() {
            bail!("usage: embed-face [--weights FILE --backbone rNN] [--pairs FILE] face.jpg ...");
        }
        Ok(Args { config, weights, pairs, images })
    }
}
