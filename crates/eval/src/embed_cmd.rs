//! The `embed` command: a photo, a folder of photos (recursive, sorted paths) or a `.npy`
//! of N x 3 x S x S f32 already-normalized pixels goes in; an N x D f32 `.npy` of embeddings
//! comes out (raw `features` output unless the flip test or normalization is on), plus, for
//! photo inputs, a `.txt` beside it listing the photos in row order. The face of each photo
//! is found as [`FaceInput`] says; in a folder, a photo that cannot be read or has no face is
//! reported and left out, and the others are embedded.

use std::path::{Path, PathBuf};

use candle::{DType, Tensor};

use crate::embed::{embed_all, EmbedConfig};
use crate::error::{Error, Result};
use crate::photos::{embed_photos, FaceInput, PhotoFace, Skipped};
use crate::run::{load_model_with, ModelSource};

/// Options of [`embed_command`].
#[derive(Debug, Clone)]
pub struct EmbedOptions {
    /// The model.
    pub model: ModelSource,
    /// Image file, folder, or `.npy`.
    pub input: PathBuf,
    /// Output `.npy`.
    pub output: PathBuf,
    /// How the face is found in each photo.
    pub faces: FaceInput,
    /// The device to embed on.
    pub device: candle::Device,
    /// The kernels the model runs on (the defaults unless the binary chose others).
    pub kernels: arcface_backbone::KernelOptions,
    /// Batch size, flip test, normalization.
    pub config: EmbedConfig,
}

/// What [`embed_command`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedResult {
    /// Number of embeddings.
    pub count: usize,
    /// Embedding size.
    pub dim: usize,
    /// The `.npy` written.
    pub output: PathBuf,
    /// The list of image files, for image inputs.
    pub list: Option<PathBuf>,
    /// What happened to each embedded photo, in row order.
    pub photos: Vec<PhotoFace>,
    /// Photos of a folder left out, with the reason.
    pub skipped: Vec<Skipped>,
}

const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Image files under `dir`, recursively, sorted by path.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
            let p = entry.map_err(|e| Error::io(&d, e))?.path();
            if p.is_dir() {
                stack.push(p);
            } else if is_image(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads an N x 3 x S x S f32 `.npy` and checks its shape against the model input size.
pub fn read_image_npy(path: &Path, size: usize) -> Result<Tensor> {
    let t = Tensor::read_npy(path)
        .map_err(|e| Error::format(path, format!("not a readable .npy: {e}")))?;
    if t.dtype() != DType::F32 {
        return Err(Error::format(
            path,
            format!("expected f32 pixels, found {:?}", t.dtype()),
        ));
    }
    match t.dims() {
        [n, 3, h, w] if *h == size && *w == size && *n > 0 => Ok(t),
        d => Err(Error::format(
            path,
            format!("expected shape N x 3 x {size} x {size}, found {d:?}"),
        )),
    }
}

/// Refuses outputs that would destroy a file that is not an earlier `embed`'s output: the
/// embeddings must go to a `.npy` other than the input, and the image list beside it may only
/// replace the list of an earlier run (its `.npy` exists too).
fn check_outputs(opts: &EmbedOptions) -> Result<()> {
    let out = &opts.output;
    if !out.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")) {
        return Err(Error::format(out, "the output must be a .npy file (it is written, not read)"));
    }
    let same_file = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same_file(out, &opts.input) {
        return Err(Error::format(out, "is the input: choose another output file"));
    }
    let list = out.with_extension("txt");
    if list.exists() && !out.exists() {
        return Err(Error::format(
            &list,
            "exists and is not the image list of an earlier embed (no .npy beside it); move it or choose another output",
        ));
    }
    Ok(())
}

/// Runs the `embed` command.
pub fn embed_command(opts: &EmbedOptions) -> Result<EmbedResult> {
    check_outputs(opts)?;
    let input = &opts.input;
    let is_npy = input
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    let images = if input.is_dir() {
        let list = list_images(input)?;
        if list.is_empty() {
            return Err(Error::format(
                input,
                "no images (jpg, jpeg, png) in this folder",
            ));
        }
        Some(list)
    } else if is_npy {
        None
    } else if input.is_file() {
        Some(vec![input.clone()])
    } else {
        return Err(Error::format(input, "no such file or folder"));
    };
    let device = &opts.device;
    let model = load_model_with(&opts.model, device, &opts.kernels)?;
    let (emb, photos, skipped) = match &images {
        Some(paths) => embed_photos(
            &model.net,
            paths,
            &opts.faces,
            &model.info.preprocess,
            device,
            &opts.config,
            input.is_dir(),
        )?,
        None => {
            let x = read_image_npy(input, model.info.backbone.input_size)?;
            (embed_all(&model.net, &x, device, &opts.config)?, Vec::new(), Vec::new())
        }
    };
    let (count, dim) = emb.dims2()?;
    if let Some(parent) = opts.output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    emb.write_npy(&opts.output)
        .map_err(|e| Error::format(&opts.output, e.to_string()))?;
    let list = match images {
        Some(_) => {
            let list = opts.output.with_extension("txt");
            let text: String = photos.iter().map(|p| format!("{}\n", p.path.display())).collect();
            std::fs::write(&list, text).map_err(|e| Error::io(&list, e))?;
            Some(list)
        }
        None => None,
    };
    Ok(EmbedResult {
        count,
        dim,
        output: opts.output.clone(),
        list,
        photos,
        skipped,
    })
}
