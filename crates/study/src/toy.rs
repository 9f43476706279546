//! The study's 2-D picture (the ArcFace paper's toy figure): the 8 LFW people with the most
//! images, embedded in 2 dimensions by each loss and drawn on the unit circle with their
//! class-center directions.
//!
//! Training a whole backbone down to 2-d embeddings needs far more steps than a 2-core CPU can
//! give (a 3-epoch attempt left the classes piled up on one arc). So each loss's 2-D picture
//! is learned on top of the *frozen* backbone that the same loss trained on `dev`: a small
//! MLP (d -> 64 -> ReLU -> 2) maps the backbone's `features` to 2-d, and a margin
//! head with the study's loss, scale and margin classifies the 8 people. Full-batch SGD with
//! momentum and a cosine learning rate runs for `steps` steps (a few seconds). Everything is
//! seeded; the same loss, scale and margin act on the 2-d embedding as in the paper.
//!
//! On `dev`, six of the eight are training identities of the backbone; Donald_Rumsfeld and
//! Gerhard_Schroeder are `dev` test identities that the backbone never saw.

use std::path::{Path, PathBuf};

use arcface_eval::embed::ImageSource;
use arcface_eval::{embed_images, l2_normalize, load_model_with, EmbedConfig, ModelSource};
use arcface_loss::init::seeded_normal;
use arcface_loss::MarginHead;
use arcface_train::run::head_config;
use arcface_train::{clip_grad_norm, Optimizer, TrainConfig};
use candle::{DType, Device, Tensor, Var};
use candle_nn::VarMap;

use crate::error::{Result, StudyError};
use crate::{StudyOptions, TOP8};

/// Hidden width of the 2-D projection.
const HIDDEN: usize = 64;

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
    /// Training accuracy of the 2-D classifier (margin-free cosines) after the last step.
    pub accuracy: f64,
    /// Loss at the last step.
    pub loss: f64,
}

/// The images of the 8 people (sorted), their labels and names.
fn top8_images(cfg: &TrainConfig) -> Result<(Vec<PathBuf>, Vec<u32>, Vec<String>)> {
    let images = cfg.data.lfw_dir().join(arcface_data::lfw::IMAGES_DIR);
    let (mut paths, mut labels, mut names) = (Vec::new(), Vec::new(), Vec::new());
    for (label, name) in TOP8.iter().enumerate() {
        let dir = images.join(name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| StudyError::io(&dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg")))
            .collect();
        if files.is_empty() {
            return Err(StudyError::Invalid(format!("{} holds no .jpg image", dir.display())));
        }
        files.sort();
        labels.extend(std::iter::repeat_n(label as u32, files.len()));
        paths.extend(files);
        names.push(name.to_string());
    }
    Ok((paths, labels, names))
}

/// A seeded `rows x cols` weight (He-normal) as a trainable variable.
fn weight(varmap: &VarMap, name: &str, rows: usize, cols: usize, seed: u64) -> Result<Var> {
    let std = (2.0 / rows as f64).sqrt();
    let init = seeded_normal((rows, cols), 0.0, std, seed, DType::F32, &Device::Cpu)?;
    let var = Var::from_tensor(&init)?;
    varmap.data().lock().map_err(|_| StudyError::Invalid("variable map poisoned".into()))?.insert(name.into(), var.clone());
    Ok(var)
}

/// Learns the 2-D picture for the loss of `cfg` on top of the run `dir`'s frozen backbone.
pub fn toy_2d(cfg: &TrainConfig, dir: &Path, steps: usize, opts: &StudyOptions) -> Result<Toy> {
    let device = &opts.device;
    let (paths, labels, names) = top8_images(cfg)?;
    let model = load_model_with(&ModelSource::Run(dir.to_path_buf()), &opts.device, &opts.kernels)?;
    let emb_cfg = EmbedConfig { batch_size: 128, flip: false, normalize: false, progress: opts.progress.clone() };
    let feats = embed_images(&model.net, &ImageSource::Paths(&paths), &model.info.preprocess, device, &emb_cfg)?
        .to_dtype(DType::F32)?
        .to_device(&Device::Cpu)?;
    let mut toy = fit_2d(cfg, &feats, &labels, steps)?;
    toy.names = names;
    Ok(toy)
}

/// Trains the d -> 64 -> 2 projection and a margin head with `cfg`'s loss on `feats` (N x d,
/// CPU f32) for `steps` full-batch steps; returns the unit 2-d points and center directions
/// (class names left empty).
fn fit_2d(cfg: &TrainConfig, feats: &Tensor, labels: &[u32], steps: usize) -> Result<Toy> {
    let d = feats.dim(1)?;
    let num_classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    let labels_t = Tensor::new(labels, &Device::Cpu)?;

    let varmap = VarMap::new();
    let w1 = weight(&varmap, "w1", d, HIDDEN, cfg.seed)?;
    let w2 = weight(&varmap, "w2", HIDDEN, 2, cfg.seed + 1)?;
    let head_cfg = head_config(cfg, num_classes, 2);
    let head = MarginHead::init_varmap(&head_cfg, &varmap, "head", DType::F32, &Device::Cpu, cfg.seed + 2)?;
    let params: Vec<(String, Var)> =
        varmap.data().lock().map_err(|_| StudyError::Invalid("variable map poisoned".into()))?.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let base_lr = cfg.schedule.lr;
    let mut opt = Optimizer::new(cfg.optim.clone(), params.clone(), base_lr);
    let vars: Vec<Var> = params.iter().map(|(_, v)| v.clone()).collect();

    let embed2 = |x: &Tensor| -> candle::Result<Tensor> { x.matmul(w1.as_tensor())?.relu()?.matmul(w2.as_tensor()) };
    let (mut loss, mut accuracy) = (f64::NAN, 0.0);
    for step in 0..steps.max(1) {
        let out = head.forward(&embed2(feats)?, &labels_t)?;
        loss = out.loss.to_scalar::<f32>()? as f64;
        if !loss.is_finite() {
            return Err(StudyError::Invalid(format!("2-D toy ({}): non-finite loss at step {step}", head_cfg.margin.name())));
        }
        accuracy = out.correct.to_dtype(DType::F64)?.to_scalar::<f64>()? / labels.len() as f64;
        let mut grads = out.loss.backward()?;
        clip_grad_norm(&mut grads, &vars, 5.0)?;
        opt.set_lr(base_lr * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / steps as f64).cos()));
        opt.step(&grads)?;
    }
    let to_pairs = |t: &Tensor| -> Result<Vec<[f64; 2]>> {
        Ok(t.to_vec2::<f32>()?.into_iter().map(|r| [r[0] as f64, r[1] as f64]).collect())
    };
    Ok(Toy {
        points: to_pairs(&l2_normalize(&embed2(feats)?)?)?,
        labels: labels.iter().map(|&l| l as usize).collect(),
        names: Vec::new(),
        centers: to_pairs(&l2_normalize(head.weight())?)?,
        accuracy,
        loss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 8 well-separated Gaussian clusters in 16-d, 20 points each.
    fn clusters() -> anyhow::Result<(Tensor, Vec<u32>)> {
        let centers = seeded_normal((8, 16), 0.0, 1.0, 7, DType::F32, &Device::Cpu)?;
        let noise = seeded_normal((160, 16), 0.0, 0.1, 8, DType::F32, &Device::Cpu)?;
        let labels: Vec<u32> = (0..160).map(|i| (i / 20) as u32).collect();
        let idx = Tensor::new(labels.as_slice(), &Device::Cpu)?;
        Ok(((centers.index_select(&idx, 0)? + noise)?, labels))
    }

    fn fit(loss: &str) -> anyhow::Result<Toy> {
        let mut cfg = TrainConfig::preset("study_quick")?;
        if loss == "softmax" {
            cfg.loss.margin = arcface_loss::Margin::Softmax;
        }
        let (feats, labels) = clusters()?;
        Ok(fit_2d(&cfg, &feats, &labels, 300)?)
    }

    #[test]
    fn separable_clusters_are_learned_with_unit_points() -> anyhow::Result<()> {
        for loss in ["softmax", "arcface"] {
            let toy = fit(loss)?;
            assert_eq!(toy.points.len(), 160);
            assert_eq!(toy.centers.len(), 8);
            assert!(toy.accuracy > 0.99, "{loss}: accuracy {}", toy.accuracy);
            for p in toy.points.iter().chain(&toy.centers) {
                assert!((p[0].hypot(p[1]) - 1.0).abs() < 1e-4, "{loss}: not unit: {p:?}");
            }
        }
        Ok(())
    }

    /// The largest angle (degrees) between a point and its own class center.
    fn worst_own_angle(toy: &Toy) -> f64 {
        toy.points
            .iter()
            .zip(&toy.labels)
            .map(|(p, &l)| {
                let c = toy.centers[l];
                (p[0] * c[0] + p[1] * c[1]).clamp(-1.0, 1.0).acos().to_degrees()
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn arcface_is_more_compact_than_softmax() -> anyhow::Result<()> {
        // The margin pulls every point to within (half the center spacing - m) of its center;
        // measured 8.2 degrees against softmax's 23.9 on these clusters.
        let (arc, soft) = (worst_own_angle(&fit("arcface")?), worst_own_angle(&fit("softmax")?));
        assert!(arc < 15.0, "arcface: worst angle to own center {arc}");
        assert!(arc < soft, "arcface {arc} is not more compact than softmax {soft}");
        Ok(())
    }
}
