//! Validation during training: embeds the protocol's test images (flip test, as InsightFace's
//! `verification.py`) with the current backbone in eval mode and scores the pairs with
//! arcface-eval's pair scorer and metrics (10-fold accuracy, best threshold), the same ones
//! `eval_run` reports final results with.
//!
//! The test images are preprocessed once into an [`ImageCache`] so that each epoch's
//! validation costs only the forward passes.

use std::path::Path;

use arcface_data::{images_to_tensor, ImageCache, PairSet, Preprocess, Progress};
use arcface_eval::embed::{embed_tensor, EmbedConfig};
use arcface_eval::{evaluate_scores, pair_folds, score_pairs, Metrics, MetricsOptions};
use candle::{Device, Tensor};
use candle_nn::ModuleT;
use crate::error::Result;

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
    ) -> Result<Self> {
        let cache = ImageCache::build_or_open(&pairs.images, preprocess, cache_dir, progress)?;
        Ok(Self {
            pairs: pairs.clone(),
            cache,
            size: preprocess.size,
        })
    }

    /// Embeds all test images and returns the pair metrics.
    pub fn evaluate<M: ModuleT + Sync>(
        &self,
        model: &M,
        device: &Device,
        batch_size: usize,
    ) -> Result<Metrics> {
        let n = self.cache.len();
        let cfg = EmbedConfig {
            batch_size,
            flip: true,
            normalize: true,
            progress: arcface_data::Progress::Silent,
        };
        let mut batches = Vec::with_capacity(n.div_ceil(batch_size.max(1)));
        for start in (0..n).step_by(batch_size.max(1)) {
            let end = (start + batch_size.max(1)).min(n);
            let pixels: Vec<u8> = (start..end)
                .flat_map(|i| self.cache.get(i).iter().copied())
                .collect();
            let x = images_to_tensor(&pixels, end - start, self.size, device)?;
            batches.push(embed_tensor(model, &x, &cfg)?.to_device(&Device::Cpu)?);
        }
        let emb = Tensor::cat(&batches, 0)?;
        let pairs = &self.pairs.pairs;
        let scores = score_pairs(&emb, pairs)?;
        let same: Vec<bool> = pairs.iter().map(|p| p.same).collect();
        Ok(evaluate_scores(
            &scores,
            &same,
            Some(&pair_folds(pairs)),
            &MetricsOptions::default(),
        )?)
    }
}
