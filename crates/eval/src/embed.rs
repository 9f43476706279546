//! Face embeddings in batches: images are decoded and preprocessed in parallel (rayon) with
//! arcface-data's [`Preprocess`], run through the backbone in eval mode
//! (`forward_t(x, false)`), optionally with the flip test of InsightFace's verification.py
//! (embedding = L2-normalize(f(x) + f(flip(x)))). Progress is reported through the caller's
//! [`Progress`].

use std::path::{Path, PathBuf};

use arcface_data::{images_to_tensor, Preprocess, Progress, Task};
use candle::{Device, Tensor, D};
use candle_nn::ModuleT;
use rayon::prelude::*;

use crate::error::{Error, Result};

/// How embeddings are computed.
#[derive(Debug, Clone)]
pub struct EmbedConfig {
    /// Images per forward pass.
    pub batch_size: usize,
    /// Flip test: add the embedding of the horizontally mirrored image (implies normalize).
    pub flip: bool,
    /// L2-normalize the output rows.
    pub normalize: bool,
    /// Where progress goes.
    pub progress: Progress,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        Self {
            batch_size: 64,
            flip: true,
            normalize: true,
            progress: Progress::Lines,
        }
    }
}

/// Divides each row by its L2 norm (rows of zeros stay zero).
pub fn l2_normalize(x: &Tensor) -> candle::Result<Tensor> {
    let norm = x
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12f32, f32::MAX)?;
    x.broadcast_div(&norm)
}

/// Embeds one batch (N x 3 x S x S, normalized pixels) in eval mode, with the flip test and
/// normalization of `config`.
pub fn embed_tensor<M: ModuleT + Sync>(
    model: &M,
    x: &Tensor,
    config: &EmbedConfig,
) -> candle::Result<Tensor> {
    // detach: the weights are Vars, so an undetached output keeps the whole batch's
    // activation graph alive (about 1.3 GB per 64 images even for a width-8 IResNet), and
    // collecting embeddings over a data set would pile those graphs up.
    let mut f = on_pool(|| model.forward_t(x, false))?.detach();
    if config.flip {
        let flipped = x.flip(&[3])?.contiguous()?;
        f = (f + on_pool(|| model.forward_t(&flipped, false))?.detach())?;
    }
    if config.flip || config.normalize {
        f = l2_normalize(&f)?;
    }
    Ok(f)
}

/// Runs `f` on a thread of rayon's pool, the calling thread waiting asleep. The kernels split
/// each layer over the pool's threads; run from outside it, the caller would do the work
/// between layers on an extra thread while the pool's workers spin, one thread more than
/// cores (r50 at batch 1 on 2 cores, im2col kernels: 130-146 ms per forward called from
/// outside the pool, 114-125 ms on it). From inside
/// the pool it is a plain call.
fn on_pool<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    rayon::scope(|_| f())
}

/// Source of images to embed.
pub enum ImageSource<'a> {
    /// Image files on disk.
    Paths(&'a [PathBuf]),
    /// Encoded images in memory read from a file (a `.bin`), named in errors by that file and
    /// their index.
    Encoded(&'a [Vec<u8>], &'a Path),
}

impl ImageSource<'_> {
    fn len(&self) -> usize {
        match self {
            ImageSource::Paths(p) => p.len(),
            ImageSource::Encoded(e, _) => e.len(),
        }
    }

    /// How errors name image `i`.
    fn name(&self, i: usize) -> String {
        match self {
            ImageSource::Paths(p) => p[i].display().to_string(),
            ImageSource::Encoded(_, file) => format!("{}: image {i}", file.display()),
        }
    }

    fn load(&self, i: usize, preprocess: &Preprocess) -> Result<Vec<u8>> {
        match self {
            ImageSource::Paths(p) => preprocess.load(&p[i]),
            ImageSource::Encoded(e, _) => preprocess.decode(&e[i], &self.name(i)),
        }
        .map_err(Error::from)
    }
}

/// Embeds every image of `source` in order; returns an N x D f32 tensor on the CPU.
pub fn embed_images<M: ModuleT + Sync>(
    model: &M,
    source: &ImageSource,
    preprocess: &Preprocess,
    device: &Device,
    config: &EmbedConfig,
) -> Result<Tensor> {
    let n = source.len();
    if n == 0 {
        return Err(Error::Invalid("no images to embed".into()));
    }
    let bs = config.batch_size.max(1);
    let progress = config.progress.start(Task::items("embedding", n as u64));
    let mut out = Vec::with_capacity(n.div_ceil(bs));
    for start in (0..n).step_by(bs) {
        let end = (start + bs).min(n);
        let pixels: Vec<Vec<u8>> = (start..end)
            .into_par_iter()
            .map(|i| source.load(i, preprocess))
            .collect::<Result<_>>()?;
        let x = images_to_tensor(&pixels.concat(), end - start, preprocess.size, device)?;
        let emb = embed_tensor(model, &x, config)?.to_device(&Device::Cpu)?;
        if let Some(row) = first_degenerate_row(&emb)? {
            return Err(Error::Invalid(format!(
                "{}: the model's embedding is not finite (NaN, infinite or overflowed to zero); its weights are damaged",
                source.name(start + row)
            )));
        }
        out.push(emb);
        progress.set(end as u64);
    }
    progress.finish();
    Ok(Tensor::cat(&out, 0)?)
}

/// The first row of `emb` no score or verdict may be computed from: one holding a NaN or an
/// infinity, or all zeros (what normalizing an overflowed embedding, `x / inf`, leaves).
pub fn first_degenerate_row(emb: &Tensor) -> Result<Option<usize>> {
    let rows = emb.to_dtype(candle::DType::F32)?.flatten_from(1)?.to_vec2::<f32>()?;
    Ok(rows.iter().position(|r| r.iter().any(|v| !v.is_finite()) || r.iter().all(|&v| v == 0.0)))
}

/// Embeds an N x 3 x S x S tensor of already normalized pixels in batches.
pub fn embed_all<M: ModuleT + Sync>(
    model: &M,
    x: &Tensor,
    device: &Device,
    config: &EmbedConfig,
) -> Result<Tensor> {
    let n = x.dim(0)?;
    let bs = config.batch_size.max(1);
    let progress = config.progress.start(Task::items("embedding", n as u64));
    let mut out = Vec::new();
    for start in (0..n).step_by(bs) {
        let len = bs.min(n - start);
        let batch = x.narrow(0, start, len)?.to_device(device)?;
        let emb = embed_tensor(model, &batch, config)?.to_device(&Device::Cpu)?;
        if let Some(row) = first_degenerate_row(&emb)? {
            return Err(Error::Invalid(format!(
                "row {} of the input: the model's embedding is not finite (NaN, infinite or overflowed to zero)",
                start + row
            )));
        }
        out.push(emb);
        progress.set((start + len) as u64);
    }
    if out.is_empty() {
        return Err(Error::Invalid("no images to embed".into()));
    }
    progress.finish();
    Ok(Tensor::cat(&out, 0)?)
}

/// Cosine similarity of rows `a[i]` and `b[i]` of two embedding matrices (any scale).
pub fn cosine_rows(a: &Tensor, b: &Tensor) -> Result<Vec<f64>> {
    let a = l2_normalize(a)?;
    let b = l2_normalize(b)?;
    let s = (a * b)?.sum(D::Minus1)?.to_vec1::<f32>()?;
    Ok(s.into_iter().map(f64::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A "model" that flattens the first channel's first row: forward(x)[n] = x[n, 0, 0, :].
    struct FirstRow;
    impl ModuleT for FirstRow {
        fn forward_t(&self, x: &Tensor, _train: bool) -> candle::Result<Tensor> {
            x.narrow(1, 0, 1)?.narrow(2, 0, 1)?.flatten_from(1)
        }
    }

    #[test]
    fn flip_test_adds_the_mirror_then_normalizes() {
        // Row [1, 2, 0]: f(x) + f(flip(x)) = [1,2,0] + [0,2,1] = [1,4,1], norm sqrt(18).
        let x = Tensor::new(&[1f32, 2., 0.], &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 1, 3))
            .unwrap();
        let x = x.broadcast_as((1, 3, 3, 3)).unwrap().contiguous().unwrap();
        let cfg = EmbedConfig {
            flip: true,
            progress: arcface_data::Progress::Silent,
            ..Default::default()
        };
        let e = embed_tensor(&FirstRow, &x, &cfg)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let r = 18f32.sqrt();
        for (a, b) in e[0].iter().zip([1. / r, 4. / r, 1. / r]) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        let raw = EmbedConfig {
            flip: false,
            normalize: false,
            progress: arcface_data::Progress::Silent,
            ..Default::default()
        };
        assert_eq!(
            embed_tensor(&FirstRow, &x, &raw)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap(),
            vec![vec![1., 2., 0.]]
        );
    }

    /// Sums the first row with a trainable scale, so outputs would track the graph.
    struct Scaled(candle::Var);
    impl ModuleT for Scaled {
        fn forward_t(&self, x: &Tensor, t: bool) -> candle::Result<Tensor> {
            FirstRow.forward_t(x, t)?.broadcast_mul(self.0.as_tensor())
        }
    }

    #[test]
    fn embeddings_do_not_keep_the_graph() {
        let var = candle::Var::new(&[2f32], &Device::Cpu).unwrap();
        let x = Tensor::ones((2, 3, 1, 4), candle::DType::F32, &Device::Cpu).unwrap();
        assert!(Scaled(var.clone()).forward_t(&x, false).unwrap().track_op());
        for flip in [false, true] {
            let cfg = EmbedConfig {
                flip,
                normalize: false,
                progress: arcface_data::Progress::Silent,
                batch_size: 2,
            };
            assert!(!embed_tensor(&Scaled(var.clone()), &x, &cfg)
                .unwrap()
                .track_op());
        }
    }

    #[test]
    fn cosine_of_rows() {
        let a = Tensor::new(&[[3f32, 4.], [1., 0.]], &Device::Cpu).unwrap();
        let b = Tensor::new(&[[6f32, 8.], [0., 2.]], &Device::Cpu).unwrap();
        let c = cosine_rows(&a, &b).unwrap();
        assert!((c[0] - 1.0).abs() < 1e-6 && c[1].abs() < 1e-6);
    }

    #[test]
    fn batches_concatenate_in_order() {
        let x = Tensor::arange(0f32, 2. * 3. * 2. * 2. * 5., &Device::Cpu)
            .unwrap()
            .reshape((10, 3, 2, 2))
            .unwrap();
        let cfg = EmbedConfig {
            batch_size: 3,
            flip: false,
            normalize: false,
            progress: arcface_data::Progress::Silent,
        };
        let e = embed_all(&FirstRow, &x, &Device::Cpu, &cfg).unwrap();
        assert_eq!(e.dims(), &[10, 2]);
        assert_eq!(e.to_vec2::<f32>().unwrap()[9], vec![108., 109.]);
    }
}
