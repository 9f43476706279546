//! The study's measurements: angles between training embeddings and class centers, angles
//! of test pairs, and the 2-D toy training on the 8 people with the most images.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use arcface_eval::embed::ImageSource;
use arcface_eval::{embed_images, load_model, read_scores_tsv, EmbedConfig, ModelSource};
use arcface_train::run::load_split;
use arcface_train::TrainConfig;
use candle::{DType, Device, Tensor, D};

use super::TOP8;

/// Per training image: the angle (degrees) to its own class center and to the nearest other one.
pub struct ClassAngles {
    /// Angle to the own center.
    pub own: Vec<f64>,
    /// Angle to the nearest other center.
    pub nearest_other: Vec<f64>,
}

/// Test-pair angles (degrees) by ground truth.
pub struct PairAngles {
    /// Same-person pairs.
    pub same: Vec<f64>,
    /// Different-person pairs.
    pub different: Vec<f64>,
}

/// The 2-D toy: unit embeddings, labels, names, and the class-center directions.
pub struct Toy {
    /// Unit 2-D embeddings.
    pub points: Vec<[f64; 2]>,
    /// Class of each point.
    pub labels: Vec<usize>,
    /// Class names.
    pub names: Vec<String>,
    /// Unit class-center directions.
    pub centers: Vec<[f64; 2]>,
}

/// The head's class centers from the run's latest checkpoint (`head.weight`, C x d).
fn head_centers(dir: &Path, device: &Device) -> anyhow::Result<Tensor> {
    let ckdir = dir.join("checkpoints");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&ckdir)
        .with_context(|| format!("listing {}", ckdir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    let last = files.pop().ok_or_else(|| anyhow!("no checkpoint in {}", ckdir.display()))?;
    let mut tensors = candle::safetensors::load(&last, device).with_context(|| format!("reading {}", last.display()))?;
    tensors.remove("head.weight").ok_or_else(|| anyhow!("{} holds no head.weight", last.display()))
}

fn l2_normalize(t: &Tensor) -> candle::Result<Tensor> {
    let norm = t.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    t.broadcast_div(&norm)
}

fn degrees(cos: f64) -> f64 {
    cos.clamp(-1.0, 1.0).acos().to_degrees()
}

/// Embeds the run's training images and measures their angles to the class centers.
pub fn class_angles(cfg: &TrainConfig, dir: &Path, device: &str) -> anyhow::Result<ClassAngles> {
    let device = arcface_backbone::select_device(device)?;
    let model = load_model(&ModelSource::Run(dir.to_path_buf()), &device)?;
    let (train, _) = load_split(cfg)?;
    let emb_cfg = EmbedConfig { batch_size: 128, flip: false, normalize: true, progress: true };
    let emb = embed_images(&model.net, &ImageSource::Paths(&train.paths), &model.info.preprocess, &device, &emb_cfg)?;
    let centers = l2_normalize(&head_centers(dir, &device)?.to_dtype(DType::F32)?)?;
    if centers.dim(0)? != train.num_classes() {
        return Err(anyhow!(
            "{}: the head has {} centers but the training split has {} identities",
            dir.display(),
            centers.dim(0)?,
            train.num_classes()
        ));
    }
    let cos: Vec<Vec<f32>> = emb.to_dtype(DType::F32)?.matmul(&centers.t()?)?.to_vec2()?;
    let mut own = Vec::with_capacity(cos.len());
    let mut nearest_other = Vec::with_capacity(cos.len());
    for (row, &label) in cos.iter().zip(&train.labels) {
        let y = label as usize;
        own.push(degrees(row[y] as f64));
        let best = row.iter().enumerate().filter(|(j, _)| *j != y).map(|(_, &c)| c).fold(f32::MIN, f32::max);
        nearest_other.push(degrees(best as f64));
    }
    Ok(ClassAngles { own, nearest_other })
}

/// Angles of the evaluated test pairs, from the run's `eval/scores.tsv` (cosine similarities).
pub fn pair_angles(dir: &Path) -> anyhow::Result<PairAngles> {
    let table = read_scores_tsv(&dir.join("eval/scores.tsv"))?;
    let mut out = PairAngles { same: Vec::new(), different: Vec::new() };
    for (&same, &score) in table.same.iter().zip(&table.scores) {
        let a = degrees(score);
        if same {
            out.same.push(a)
        } else {
            out.different.push(a)
        }
    }
    Ok(out)
}

/// Trains `base` with 2-d embeddings on the 8 people with the most images and returns their
/// unit embeddings and class-center directions.
pub fn toy_2d(base: &TrainConfig, loss: &str, out: &Path, epochs: usize, device: &str) -> anyhow::Result<Toy> {
    let lfw_dir = base.data.lfw_dir.clone().unwrap_or_else(|| base.data.dir.join("lfw"));
    let images = lfw_dir.join("lfw-deepfunneled");
    // A folder dataset of the 8 people: links into the LFW tree, no copies.
    let root = out.join("toy-data");
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    for name in TOP8 {
        let link = root.join(name);
        if !link.exists() {
            let target = std::fs::canonicalize(images.join(name))
                .with_context(|| format!("{} is missing: download LFW first", images.join(name).display()))?;
            std::os::unix::fs::symlink(&target, &link).with_context(|| format!("linking {}", link.display()))?;
        }
    }
    let mut cfg = base.clone();
    cfg.name = format!("toy2d-{loss}");
    cfg.loss.kind = loss.into();
    if loss == "softmax" {
        cfg.loss.m = None;
    }
    cfg.model.num_features = 2;
    cfg.data.source = "folder".into();
    cfg.data.folder = Some(root.clone());
    cfg.data.min_images = 1;
    cfg.train.epochs = epochs;
    cfg.train.batch_size = cfg.train.batch_size.min(64);
    cfg.train.validate = false;
    cfg.train.eval_at_end = false;
    cfg.validate()?;
    let dir = out.join(&cfg.name);
    super::train_once(&cfg, &dir, device)?;

    let device = arcface_backbone::select_device(device)?;
    let model = load_model(&ModelSource::Run(dir.clone()), &device)?;
    let (set, _) = load_split(&cfg)?;
    let emb_cfg = EmbedConfig { batch_size: 128, flip: false, normalize: true, progress: true };
    let emb = embed_images(&model.net, &ImageSource::Paths(&set.paths), &model.info.preprocess, &device, &emb_cfg)?;
    let centers = l2_normalize(&head_centers(&dir, &device)?.to_dtype(DType::F32)?)?;
    let to_pairs = |t: &Tensor| -> anyhow::Result<Vec<[f64; 2]>> {
        Ok(t.to_dtype(DType::F32)?.to_vec2::<f32>()?.into_iter().map(|r| [r[0] as f64, r[1] as f64]).collect())
    };
    Ok(Toy {
        points: to_pairs(&emb)?,
        labels: set.labels.iter().map(|&l| l as usize).collect(),
        names: set.classes.clone(),
        centers: to_pairs(&centers)?,
    })
}
