//! The training loader: a per-epoch shuffle that is a pure function of (seed, epoch)
//! (ChaCha8 stream `epoch`), batches assembled from the [`ImageCache`] with rayon on a
//! background thread, `prefetch` batches ahead, augmented on the fly in the worker threads
//! (the seeded flip, and the [`Augment`] steps; the cache keeps the unaugmented faces).
//! `skip_batches` lets a resumed run continue with exactly the batches it would have seen.
//! Also [`EvalBatches`]: images decoded from their files in order, for evaluation.

use std::path::PathBuf;
use std::sync::Arc;

use candle::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::augment::Augment;
use crate::cache::ImageCache;
use crate::error::{DataError, Result};
use crate::prefetch::Prefetch;
use crate::preprocess::{hwc_to_chw_normalized, Preprocess};

/// Loader settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LoaderConfig {
    /// Images per batch.
    pub batch_size: usize,
    /// Seed of the shuffle and of the augmentation.
    pub seed: u64,
    /// Random horizontal flip with probability 1/2.
    pub flip: bool,
    /// The other random augmentation (default: none).
    pub augment: Augment,
    /// Drop the last, incomplete batch of each epoch.
    pub drop_last: bool,
    /// Batches prepared ahead of the consumer (at least 1).
    pub prefetch: usize,
    /// Shuffle each epoch (off: file order).
    pub shuffle: bool,
    /// Rayon threads for batch assembly; 0 uses the global pool.
    pub threads: usize,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            batch_size: 128,
            seed: 0,
            flip: true,
            augment: Augment::default(),
            drop_last: true,
            prefetch: 2,
            shuffle: true,
            threads: 0,
        }
    }
}

/// One training batch, on the CPU.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `N x 3 x S x S` f32, normalized to [-1, 1].
    pub images: Tensor,
    /// `N` u32 class ids.
    pub labels: Tensor,
    /// Cache indices of the images, in batch order.
    pub indices: Vec<usize>,
}

/// Shuffling, augmenting, prefetching batch source over an [`ImageCache`].
#[derive(Clone)]
pub struct Loader {
    cache: Arc<ImageCache>,
    labels: Arc<Vec<u32>>,
    config: LoaderConfig,
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl Loader {
    /// A loader over `cache` with `labels[i]` the class of image `i`.
    pub fn new(cache: Arc<ImageCache>, labels: Vec<u32>, config: LoaderConfig) -> Result<Loader> {
        if labels.len() != cache.len() {
            return Err(DataError::Config(format!("{} labels for {} cached images", labels.len(), cache.len())));
        }
        if config.batch_size == 0 {
            return Err(DataError::Config("batch_size must be at least 1".into()));
        }
        if let Err((key, msg)) = config.augment.validate() {
            return Err(DataError::Config(format!("augment.{key} {msg}")));
        }
        let pool = match config.threads {
            0 => None,
            n => Some(Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .map_err(|e| DataError::Config(format!("cannot build a {n}-thread pool: {e}")))?,
            )),
        };
        Ok(Loader { cache, labels: Arc::new(labels), config, pool })
    }

    /// The settings.
    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Batches in one epoch (honours `drop_last`).
    pub fn batches_per_epoch(&self) -> usize {
        let (n, b) = (self.len(), self.config.batch_size);
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The image order of `epoch`: a permutation of `0..len()` determined by (seed, epoch).
    pub fn epoch_order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        if self.config.shuffle {
            let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed);
            rng.set_stream(epoch as u64);
            order.shuffle(&mut rng);
        }
        order
    }

    /// Builds the batch of the given cache indices now, on the calling thread's rayon pool.
    pub fn assemble(&self, epoch: usize, indices: Vec<usize>) -> Result<Batch> {
        let s = self.cache.size();
        let per = 3 * s * s;
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(DataError::Config(format!("image index {bad} out of range ({} images)", self.len())));
        }
        let mut data = vec![0f32; indices.len() * per];
        let (cache, c) = (&self.cache, &self.config);
        // Each image's plan depends on (seed, epoch, index) only, so which worker takes which
        // image does not matter.
        data.par_chunks_mut(per).zip(indices.par_iter()).for_each(|(dst, &i)| {
            let src = cache.get(i);
            let plan = c.augment.plan(c.flip, c.seed, epoch as u64, i as u64, s, s);
            if plan.is_identity() {
                hwc_to_chw_normalized(src, dst);
            } else {
                hwc_to_chw_normalized(&plan.apply(src, s, s), dst);
            }
        });
        let n = indices.len();
        let labels: Vec<u32> = indices.iter().map(|&i| self.labels[i]).collect();
        Ok(Batch {
            images: Tensor::from_vec(data, (n, 3, s, s), &Device::Cpu)?,
            labels: Tensor::from_vec(labels, n, &Device::Cpu)?,
            indices,
        })
    }

    /// The batches of `epoch`, starting after the first `skip_batches`, prepared on a
    /// background thread. Dropping the iterator stops the work.
    pub fn epoch(&self, epoch: usize, skip_batches: usize) -> impl Iterator<Item = Result<Batch>> {
        let order = self.epoch_order(epoch);
        let b = self.config.batch_size;
        let chunks: Vec<Vec<usize>> =
            order.chunks(b).take(self.batches_per_epoch()).skip(skip_batches).map(<[usize]>::to_vec).collect();
        let loader = self.clone();
        let mut chunks = chunks.into_iter();
        let n = chunks.len();
        Prefetch::spawn(self.config.prefetch, n, move |_| {
            let indices = chunks.next().unwrap_or_default();
            match &loader.pool {
                Some(pool) => pool.install(|| loader.assemble(epoch, indices)),
                None => loader.assemble(epoch, indices),
            }
        })
    }
}

/// One evaluation batch: images `start..start + len` of the list, in order.
#[derive(Debug, Clone)]
pub struct EvalBatch {
    /// Index of the first image in the list.
    pub start: usize,
    /// `N x 3 x S x S` f32, normalized to [-1, 1].
    pub images: Tensor,
}

/// Decodes a list of image files in order, `batch_size` at a time, in parallel, one batch ahead.
pub struct EvalBatches {
    inner: Prefetch<EvalBatch>,
    batches: usize,
}

impl EvalBatches {
    /// Starts decoding `paths` with `preprocess` in batches of `batch_size`.
    pub fn new(paths: Vec<PathBuf>, preprocess: Preprocess, batch_size: usize) -> Result<EvalBatches> {
        preprocess.validate()?;
        if batch_size == 0 {
            return Err(DataError::Config("batch_size must be at least 1".into()));
        }
        let batches = paths.len().div_ceil(batch_size);
        let inner = Prefetch::spawn(2, batches, move |k| {
            let start = k * batch_size;
            let chunk = &paths[start..(start + batch_size).min(paths.len())];
            let per = preprocess.image_bytes();
            let mut data = vec![0f32; chunk.len() * per];
            data.par_chunks_mut(per).zip(chunk.par_iter()).try_for_each(|(dst, path)| {
                hwc_to_chw_normalized(&preprocess.load(path)?, dst);
                Ok::<_, DataError>(())
            })?;
            let s = preprocess.size;
            Ok(EvalBatch { start, images: Tensor::from_vec(data, (chunk.len(), 3, s, s), &Device::Cpu)? })
        });
        Ok(EvalBatches { inner, batches })
    }

    /// Number of batches in total.
    pub fn num_batches(&self) -> usize {
        self.batches
    }
}

impl Iterator for EvalBatches {
    type Item = Result<EvalBatch>;

    fn next(&mut self) -> Option<Result<EvalBatch>> {
        self.inner.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::should_flip;

    /// 10 images of 2x2 whose every byte is the image index (flips are then invisible) except
    /// pixel (0,0), which is 200 so flips can be detected.
    fn loader(config: LoaderConfig) -> Loader {
        let mut px = Vec::new();
        for i in 0..10u8 {
            let mut img = vec![i; 12];
            img[0] = 200;
            px.extend(img);
        }
        let cache = Arc::new(ImageCache::from_pixels(px, 2).unwrap());
        Loader::new(cache, (0..10).map(|i| i % 3).collect(), config).unwrap()
    }

    fn cfg(batch_size: usize, drop_last: bool) -> LoaderConfig {
        LoaderConfig { batch_size, seed: 7, flip: false, drop_last, prefetch: 1, ..LoaderConfig::default() }
    }

    #[test]
    fn epoch_is_a_seeded_permutation() {
        let l = loader(cfg(3, false));
        let o = l.epoch_order(0);
        let mut sorted = o.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        assert_eq!(o, l.epoch_order(0));
        assert_ne!(o, l.epoch_order(1));
        assert_ne!(o, loader(LoaderConfig { seed: 8, ..cfg(3, false) }).epoch_order(0));
    }

    #[test]
    fn batches_drop_last_skip_and_labels() {
        let l = loader(cfg(3, false));
        assert_eq!(l.batches_per_epoch(), 4);
        let all: Vec<Batch> = l.epoch(2, 0).map(|b| b.unwrap()).collect();
        assert_eq!(all.iter().map(|b| b.indices.len()).collect::<Vec<_>>(), vec![3, 3, 3, 1]);
        let flat: Vec<usize> = all.iter().flat_map(|b| b.indices.clone()).collect();
        assert_eq!(flat, l.epoch_order(2));
        let labels: Vec<u32> = all[0].labels.to_vec1().unwrap();
        assert_eq!(labels, all[0].indices.iter().map(|&i| (i % 3) as u32).collect::<Vec<_>>());
        // Pixel (0,1) of image i holds i: (i/127.5 - 1) in every channel.
        let v: Vec<f32> = all[0].images.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(all[0].images.dims(), &[3, 3, 2, 2]);
        assert!((v[1] - (all[0].indices[0] as f32 / 127.5 - 1.0)).abs() < 1e-6);
        let resumed: Vec<Vec<usize>> = l.epoch(2, 2).map(|b| b.unwrap().indices).collect();
        assert_eq!(resumed, vec![all[2].indices.clone(), all[3].indices.clone()]);
        let dropped = loader(cfg(3, true));
        assert_eq!(dropped.batches_per_epoch(), 3);
        assert_eq!(dropped.epoch(0, 0).count(), 3);
        assert_eq!(dropped.epoch(0, 5).count(), 0);
    }

    #[test]
    fn flips_are_seeded_per_image_and_epoch() {
        let l = loader(LoaderConfig { flip: true, ..cfg(10, false) });
        for epoch in 0..3 {
            let b = l.epoch(epoch, 0).next().unwrap().unwrap();
            let v: Vec<f32> = b.images.flatten_all().unwrap().to_vec1().unwrap();
            for (k, &i) in b.indices.iter().enumerate() {
                // Red plane of image k: the 200 marker sits at x=0 unflipped, x=1 flipped.
                let marker_at_1 = v[k * 12 + 1] > 0.5;
                assert_eq!(marker_at_1, should_flip(7, epoch as u64, i as u64), "epoch {epoch} image {i}");
            }
        }
    }

    /// 6 images of 16x16 with distinct textures, for the augmentation tests.
    fn textured(config: LoaderConfig) -> Loader {
        let px: Vec<u8> = (0..6 * 16 * 16 * 3).map(|k| ((k * 7919) % 251) as u8).collect();
        let cache = Arc::new(ImageCache::from_pixels(px, 16).unwrap());
        Loader::new(cache, vec![0, 1, 0, 1, 0, 1], config).unwrap()
    }

    fn full_augment() -> Augment {
        Augment {
            scale: [0.7, 1.2],
            aspect: [0.8, 1.25],
            translate: 0.1,
            rotate: 15.0,
            brightness: 0.3,
            contrast: 0.3,
            saturation: 0.3,
            grayscale: 0.3,
            blur: 0.5,
            ..Augment::default()
        }
    }

    fn pixels(b: &Batch) -> Vec<f32> {
        b.images.flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn augmented_batches_depend_on_seed_epoch_and_index_only() {
        let config = LoaderConfig { augment: full_augment(), flip: true, shuffle: false, ..cfg(6, false) };
        let one = textured(LoaderConfig { threads: 1, ..config.clone() });
        let two = textured(LoaderConfig { threads: 2, ..config.clone() });
        let a = one.assemble(3, vec![0, 1, 2, 3, 4, 5]).unwrap();
        assert_eq!(pixels(&a), pixels(&two.assemble(3, vec![0, 1, 2, 3, 4, 5]).unwrap()));
        // Image 4 alone, or in another position, gets the same pixels.
        let alone = pixels(&two.assemble(3, vec![4]).unwrap());
        let per = 3 * 16 * 16;
        assert_eq!(alone, pixels(&a)[4 * per..5 * per]);
        let other_epoch = pixels(&one.assemble(4, vec![4]).unwrap());
        assert_ne!(alone, other_epoch);
        let other_seed = textured(LoaderConfig { seed: 8, ..config.clone() });
        assert_ne!(alone, pixels(&other_seed.assemble(3, vec![4]).unwrap()));
        // Augmentation changed the image: it is not the cached face.
        let plain = textured(LoaderConfig { flip: false, ..cfg(6, false) });
        assert_ne!(alone, pixels(&plain.assemble(3, vec![4]).unwrap()));
    }

    #[test]
    fn identity_augmentation_is_the_cached_face() {
        let plain = textured(LoaderConfig { flip: false, ..cfg(6, false) });
        let zero = Augment { blur: 0.0, blur_sigma: [0.5, 0.5], ..Augment::default() };
        let same = textured(LoaderConfig { flip: false, augment: zero, ..cfg(6, false) });
        let idx: Vec<usize> = (0..6).collect();
        assert_eq!(pixels(&plain.assemble(0, idx.clone()).unwrap()), pixels(&same.assemble(0, idx).unwrap()));
    }

    #[test]
    fn bad_configs_are_errors() {
        let bad = Augment { rotate: -1.0, ..Augment::default() };
        let cache = Arc::new(ImageCache::from_pixels(vec![0; 12], 2).unwrap());
        let err = Loader::new(cache, vec![0], LoaderConfig { augment: bad, ..LoaderConfig::default() }).err().unwrap();
        assert!(err.to_string().contains("augment.rotate"), "{err}");
        let cache = Arc::new(ImageCache::from_pixels(vec![0; 24], 2).unwrap());
        assert!(Loader::new(cache.clone(), vec![0], LoaderConfig::default()).is_err());
        assert!(Loader::new(cache, vec![0, 1], LoaderConfig { batch_size: 0, ..LoaderConfig::default() }).is_err());
    }
}
