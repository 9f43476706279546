//! The study's measurements: angles between training embeddings and class centers, and angles
//! of test pairs.

use std::path::Path;

use arcface_eval::embed::ImageSource;
use arcface_eval::{embed_images, l2_normalize, load_model_with, read_scores_tsv, EmbedConfig, ModelSource, RunDir};
use arcface_train::checkpoint::load_tensors;
use arcface_train::run::load_split;
use arcface_train::{Checkpointer, TrainConfig};
use candle::{DType, Device, Tensor};

use crate::error::{Result, StudyError};
use crate::StudyOptions;

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

/// The head's class centers from the run's latest committed checkpoint (`head.weight`, C x d).
fn head_centers(dir: &Path, device: &Device) -> Result<Tensor> {
    let ckdir = RunDir::new(dir).checkpoints_dir();
    let (meta, json) = Checkpointer::new(&ckdir, 1)?
        .latest()?
        .ok_or_else(|| StudyError::Invalid(format!("no checkpoint in {}", ckdir.display())))?;
    let mut tensors = load_tensors(&json, &meta, device)?;
    tensors.remove("head.weight").ok_or_else(|| StudyError::Invalid(format!("{} holds no head.weight", json.display())))
}

fn degrees(cos: f64) -> f64 {
    cos.clamp(-1.0, 1.0).acos().to_degrees()
}

/// Embeds the run's training images and measures their angles to the class centers.
pub fn class_angles(cfg: &TrainConfig, dir: &Path, opts: &StudyOptions) -> Result<ClassAngles> {
    let device = &opts.device;
    let model = load_model_with(&ModelSource::Run(dir.to_path_buf()), &opts.device, &opts.kernels)?;
    let (train, _) = load_split(cfg)?;
    let emb_cfg = EmbedConfig { batch_size: 128, flip: false, normalize: true, progress: opts.progress.clone() };
    let emb = embed_images(&model.net, &ImageSource::Paths(&train.paths), &model.info.preprocess, device, &emb_cfg)?;
    let centers = l2_normalize(&head_centers(dir, device)?.to_dtype(DType::F32)?)?;
    if centers.dim(0)? != train.num_classes() {
        return Err(StudyError::Invalid(format!(
            "{}: the head has {} centers but the training split has {} identities",
            dir.display(),
            centers.dim(0)?,
            train.num_classes()
        )));
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
pub fn pair_angles(dir: &Path) -> Result<PairAngles> {
    let table = read_scores_tsv(&RunDir::new(dir).eval_dir().join("scores.tsv"))?;
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
