//! Photos into embeddings for `verify` and `embed`: each photo is read upright, its face cut
//! the way the user asked ([`FaceInput`]: detected and aligned, taken as an aligned face, or the
//! fixed LFW crop), and the faces embedded in batches. What happened to each photo (how many
//! faces, which one was used, why none) is reported, so the commands can say it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arcface_data::{images_to_tensor, Preprocess, Task};
use arcface_face::{load_photo, FaceFinder};
use candle::{Device, Tensor};
use candle_nn::ModuleT;
use image::imageops::FilterType;
use rayon::prelude::*;

use crate::embed::{embed_tensor, first_degenerate_row, EmbedConfig};
use crate::error::{Error, Result};

/// How a photo becomes the model's input.
#[derive(Clone)]
pub enum FaceInput {
    /// Detect faces with MTCNN and align one to the ArcFace template: the largest, or the
    /// `pick`-th (1-based, highest score first).
    Detect {
        /// The detector.
        finder: Arc<FaceFinder>,
        /// `--face N`.
        pick: Option<usize>,
    },
    /// The photo is an aligned face already (InsightFace's 112x112 crops): used as it is at
    /// the model's input size, resized otherwise.
    Aligned,
    /// The fixed crop the model's run was trained with (LFW's 250x250 frames).
    Center,
}

impl std::fmt::Debug for FaceInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaceInput::Detect { pick, .. } => f.debug_struct("Detect").field("pick", pick).finish_non_exhaustive(),
            FaceInput::Aligned => f.write_str("Aligned"),
            FaceInput::Center => f.write_str("Center"),
        }
    }
}

/// What happened to one photo.
#[derive(Debug, Clone, PartialEq)]
pub struct PhotoFace {
    /// The photo.
    pub path: PathBuf,
    /// Faces found (detection only).
    pub faces: Vec<arcface_face::Face>,
    /// 1-based number of the face used, in `faces` (detection only).
    pub chosen: Option<usize>,
    /// Set when an aligned input had to be resized: its width and height, and the model's.
    pub resized_from: Option<(u32, u32, u32)>,
}

impl PhotoFace {
    /// One line for the user about a photo that needs explaining: several faces, or a resize.
    pub fn note(&self) -> Option<String> {
        if let (Some(k), n) = (self.chosen, self.faces.len()) {
            if n > 1 {
                return Some(format!(
                    "{}: {n} faces found, using face {k} ({}; --face N picks another)",
                    self.path.display(),
                    if k == 1 + arcface_face::finder::largest(&self.faces) { "the largest" } else { "as asked" }
                ));
            }
        }
        self.resized_from.map(|(w, h, size)| {
            format!("{}: {w}x{h}, not the model's {size}x{size} input: resized (--align none)", self.path.display())
        })
    }
}

/// A photo that gave no input, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    /// The photo.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

impl FaceInput {
    /// The model's input pixels (`size x size` RGB, HWC) for one photo, and what happened.
    /// A photo without a usable face is [`Error::NoFace`].
    pub fn prepare(&self, path: &Path, preprocess: &Preprocess) -> Result<(Vec<u8>, PhotoFace)> {
        let mut report = PhotoFace { path: path.to_path_buf(), faces: Vec::new(), chosen: None, resized_from: None };
        let size = preprocess.size as u32;
        let photo = || load_photo(path).map_err(|e| Error::format(path, strip_path(&e.to_string(), path)));
        let pixels = match self {
            FaceInput::Center => Preprocess { align: arcface_data::Align::Center, ..*preprocess }.load(path)?,
            FaceInput::Aligned => {
                let img = photo()?;
                if img.dimensions() == (size, size) {
                    img.into_raw()
                } else {
                    report.resized_from = Some((img.width(), img.height(), size));
                    image::imageops::resize(&img, size, size, FilterType::Triangle).into_raw()
                }
            }
            FaceInput::Detect { finder, pick } => {
                let img = photo()?;
                let found = finder
                    .find(&img, pick.map_or(arcface_face::Choice::Largest, arcface_face::Choice::Number), size)
                    .map_err(|e| Error::format(path, format!("face detection failed: {e}")))?
                    .map_err(|why| Error::NoFace { path: path.to_path_buf(), reason: why.to_string() })?;
                report.chosen = Some(found.chosen + 1);
                report.faces = found.faces;
                found.crop.into_raw()
            }
        };
        Ok((pixels, report))
    }
}

/// `load_photo`'s messages start with the path; `Error::format` adds it again.
fn strip_path(message: &str, path: &Path) -> String {
    let prefix = format!("{}: ", path.display());
    message.strip_prefix(&prefix).unwrap_or(message).to_string()
}

/// Embeddings of the faces of `paths`, in order, with what happened to each photo. With
/// `skip_bad`, a photo that cannot be read or has no face is reported in the second list and
/// left out (its row too); otherwise it is the error.
pub fn embed_photos<M: ModuleT + Sync>(
    model: &M,
    paths: &[PathBuf],
    input: &FaceInput,
    preprocess: &Preprocess,
    device: &Device,
    config: &EmbedConfig,
    skip_bad: bool,
) -> Result<(Tensor, Vec<PhotoFace>, Vec<Skipped>)> {
    if paths.is_empty() {
        return Err(Error::Invalid("no images to embed".into()));
    }
    let bs = config.batch_size.max(1);
    let progress = config.progress.start(Task::items("embedding", paths.len() as u64));
    let (mut rows, mut used, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    for (k, chunk) in paths.chunks(bs).enumerate() {
        let prepared: Vec<Result<(Vec<u8>, PhotoFace)>> =
            chunk.par_iter().map(|p| input.prepare(p, preprocess)).collect();
        let mut pixels = Vec::new();
        let mut batch = Vec::new();
        for (path, r) in chunk.iter().zip(prepared) {
            match r {
                Ok((px, face)) => {
                    pixels.extend_from_slice(&px);
                    batch.push(face);
                }
                Err(e) if skip_bad && e.is_bad_photo() => {
                    skipped.push(Skipped { path: path.clone(), reason: strip_path(&e.to_string(), path) })
                }
                Err(e) => return Err(e),
            }
        }
        if !batch.is_empty() {
            let x = images_to_tensor(&pixels, batch.len(), preprocess.size, device)?;
            let emb = embed_tensor(model, &x, config)?.to_device(&Device::Cpu)?;
            if let Some(row) = first_degenerate_row(&emb)? {
                return Err(Error::Invalid(format!(
                    "{}: the model's embedding is not finite (NaN, infinite or overflowed to zero); its weights are damaged",
                    batch[row].path.display()
                )));
            }
            rows.push(emb);
            used.extend(batch);
        }
        progress.set(((k * bs) + chunk.len()) as u64);
    }
    progress.finish();
    if rows.is_empty() {
        return Err(Error::Invalid(format!("none of the {} images gave a face to embed", paths.len())));
    }
    Ok((Tensor::cat(&rows, 0)?, used, skipped))
}
