//! `verify`: are two face photos the same person? Finds the face in each (see
//! [`FaceInput`]), embeds both (flip test), takes their cosine similarity and compares it with
//! a threshold: an explicit one, or the best global threshold stored in the run's
//! `eval/eval.json` by [`crate::eval_run`]. The CLI maps SAME to exit code 0, DIFFERENT to 1
//! and errors (a photo without a face among them) to 2.

use std::path::{Path, PathBuf};

use crate::run_dir::RunDir;

use candle_nn::ModuleT;
use serde::Serialize;

use crate::embed::{cosine_rows, EmbedConfig};
use crate::error::{Error, Result};
use crate::photos::{embed_photos, FaceInput, PhotoFace};
use crate::run::{load_model_with, ModelSource};

/// Options of [`verify`].
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The model.
    pub model: ModelSource,
    /// First image.
    pub image_a: PathBuf,
    /// Second image.
    pub image_b: PathBuf,
    /// How the face is found in each photo.
    pub input: FaceInput,
    /// Cosine threshold; default: the run's `eval/eval.json`.
    pub threshold: Option<f64>,
    /// The device to embed on.
    pub device: candle::Device,
    /// The kernels the model runs on (the defaults unless the binary chose others).
    pub kernels: arcface_backbone::KernelOptions,
    /// Flip test.
    pub flip: bool,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyResult {
    /// Cosine similarity of the two embeddings.
    pub similarity: f64,
    /// The threshold used (cosine).
    pub threshold: f64,
    /// Where the threshold came from.
    pub threshold_source: String,
    /// `similarity > threshold`.
    pub same: bool,
    /// What happened to each photo (faces found, the one used).
    #[serde(skip)]
    pub photos: Vec<PhotoFace>,
}

impl VerifyResult {
    /// `SAME` or `DIFFERENT`.
    pub fn verdict(&self) -> &'static str {
        if self.same {
            "SAME"
        } else {
            "DIFFERENT"
        }
    }
}

/// Compares the faces of two photos with an already loaded model: their cosine similarity,
/// and what happened to each photo.
pub fn compare<M: ModuleT + Sync>(
    model: &M,
    preprocess: &arcface_data::Preprocess,
    input: &FaceInput,
    device: &candle::Device,
    a: &Path,
    b: &Path,
    flip: bool,
) -> Result<(f64, Vec<PhotoFace>)> {
    let paths = [a.to_path_buf(), b.to_path_buf()];
    let cfg = EmbedConfig {
        batch_size: 2,
        flip,
        normalize: true,
        progress: arcface_data::Progress::Silent,
    };
    let (e, photos, _) = embed_photos(model, &paths, input, preprocess, device, &cfg, false)?;
    Ok((cosine_rows(&e.narrow(0, 0, 1)?, &e.narrow(0, 1, 1)?)?[0], photos))
}

/// Embeds both images and decides.
pub fn verify(opts: &VerifyOptions) -> Result<VerifyResult> {
    opts.model.check_exists()?;
    let (threshold, threshold_source) = match (opts.threshold, &opts.model) {
        (Some(t), _) => (t, "explicit".to_string()),
        (None, ModelSource::Run(dir)) => {
            let run = RunDir::new(dir);
            let p = run.eval_summary_path();
            if !p.is_file() {
                return Err(Error::Invalid(format!(
                    "no threshold: {} does not exist (run eval on the run first, or pass a threshold)",
                    p.display()
                )));
            }
            (run.eval_summary()?.cosine_threshold(), p.display().to_string())
        }
        (None, ModelSource::Weights { .. }) => {
            return Err(Error::Invalid(
                "no threshold: pass one when verifying with a bare weight file".into(),
            ))
        }
    };
    let model = load_model_with(&opts.model, &opts.device, &opts.kernels)?;
    let (similarity, photos) = compare(
        &model.net,
        &model.info.preprocess,
        &opts.input,
        &opts.device,
        &opts.image_a,
        &opts.image_b,
        opts.flip,
    )?;
    Ok(VerifyResult {
        similarity,
        threshold,
        threshold_source,
        same: similarity > threshold,
        photos,
    })
}
