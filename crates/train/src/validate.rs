//! Validation during training: embeds the protocol's test images (flip test, as InsightFace's
//! `verification.py`) with the current backbone in eval mode and scores the pairs with
//! arcface-eval's metrics (10-fold accuracy, best threshold).
//!
//! The test images are preprocessed once into an [`ImageCache`] so that each epoch's
//! validation costs only the forward passes. Folds follow arcface-eval: the file's folds when
//! there are several, else 10 class-balanced folds in file order (as `eval_run` does for dev).

use std::path::Path;

use arcface_data::{images_to_tensor, ImageCache, PairSet, Preprocess, Progress};
use arcface_eval::embed::{embed_tensor, EmbedConfig};
use arcface_eval::{evaluate_scores, Metrics, MetricsOptions};
use candle::{Device, Tensor};
use candle_nn::ModuleT;

/// Test pairs with their preprocessed images.
pub struct Validator {
    pairs: PairSet,
    cache: ImageCache,
    size: usize,
}

impl Validator {
    /// Preprocesses (or opens the cache of) the test images.
    pub fn new(
        pairs: &PairSet,
        preprocess: &Preprocess,
        cache_dir: &Path,
        progress: Progress,
    ) -> anyhow::Result<Self> {
        let cache = ImageCache::build_or_open(&pairs.images, preprocess, cache_dir, progress)?;
        Ok(Self {
            pairs: pairs.clone(),
            cache,
            size: preprocess.size,
        })
    }

    /// Embeds all test images and returns the pair metrics.
    pub fn evaluate<M: ModuleT>(
        &self,
        model: &M,
        device: &Device,
        batch_size: usize,
    ) -> anyhow::Result<Metrics> {
        let n = self.cache.len();
        let cfg = EmbedConfig {
            batch_size,
            flip: true,
            normalize: true,
            progress: false,
        };
        let mut rows: Vec<Vec<f32>> = Vec::with_capacity(n);
        for start in (0..n).step_by(batch_size.max(1)) {
            let end = (start + batch_size.max(1)).min(n);
            let pixels: Vec<u8> = (start..end)
                .flat_map(|i| self.cache.get(i).iter().copied())
                .collect();
            let x = images_to_tensor(&pixels, end - start, self.size, device)?;
            let e: Tensor = embed_tensor(model, &x, &cfg)?.to_device(&Device::Cpu)?;
            rows.extend(e.to_dtype(candle::DType::F32)?.to_vec2::<f32>()?);
        }
        let scores: Vec<f64> = self
            .pairs
            .pairs
            .iter()
            .map(|p| {
                rows[p.a]
                    .iter()
                    .zip(&rows[p.b])
                    .map(|(a, b)| (*a as f64) * (*b as f64))
                    .sum()
            })
            .collect();
        let same: Vec<bool> = self.pairs.pairs.iter().map(|p| p.same).collect();
        let file_folds: Vec<usize> = self.pairs.pairs.iter().map(|p| p.fold).collect();
        let folds = if file_folds.iter().any(|&f| f != file_folds[0]) {
            file_folds
        } else {
            arcface_eval::run::balanced_folds(&same, 10)
        };
        Ok(evaluate_scores(
            &scores,
            &same,
            Some(&folds),
            &MetricsOptions::default(),
        )?)
    }
}
