//! The training data of a run: the split, the preprocessed-image cache, the shuffling loader
//! and the validator of the held-out pairs; also `model.json`, which tells an evaluator how
//! the images were preprocessed, and the config's LFW folder and protocol.

use std::path::Path;
use std::sync::Arc;

use arcface_data::{
    ImageCache, Lfw, Loader, LoaderConfig, PairSet, Preprocess, Progress, TrainSet,
};
use candle::Device;

use crate::config::{DataSource, TrainConfig};
use crate::metrics::RunLog;
use crate::validate::Validator;
use crate::error::{Result, TrainError};

/// Everything the loop reads data from.
pub(super) struct TrainData {
    /// The training identities.
    pub(super) train_set: TrainSet,
    /// Batches of the training set in the (seed, epoch) order.
    pub(super) loader: Loader,
    /// Full batches per epoch (at least 1).
    pub(super) steps_per_epoch: usize,
    /// Scores the test pairs, when per-epoch validation is on.
    pub(super) validator: Option<Validator>,
}

impl TrainData {
    /// Loads the split, writes `model.json`, and builds (or opens) the image caches.
    pub(super) fn prepare(
        config: &TrainConfig,
        run_dir: &Path,
        bb_cfg: &arcface_backbone::Config,
        device: &Device,
        progress: &Progress,
        log: &mut RunLog,
    ) -> Result<Self> {
        let preprocess = preprocess(config, bb_cfg);
        if preprocess.align == arcface_data::Align::Mtcnn {
            arcface_data::faces::load_detector(&config.data.dir.join("mtcnn"))?;
        }
        let (train_set, test_set) = load_split(config)?;
        if train_set.num_classes() < 2 {
            return Err(TrainError::Setup(format!(
                "training set has {} identities; need at least 2",
                train_set.num_classes()
            )));
        }
        arcface_eval::RunDir::new(run_dir).write_model_info(&model_info(config, bb_cfg, &preprocess))?;
        log.info(&format!(
            "{}: {} images of {} identities, device {:?}",
            config.name,
            train_set.len(),
            train_set.num_classes(),
            device
        ));
        let cache_dir = config.data.cache_dir();
        let loader = training_loader(
            config,
            &train_set,
            &preprocess,
            &cache_dir,
            progress.clone(),
        )?;
        let steps_per_epoch = loader.batches_per_epoch();
        if steps_per_epoch == 0 {
            return Err(TrainError::Setup(format!(
                "{} training images is less than one batch of {}",
                train_set.len(),
                config.train.batch_size
            )));
        }
        let validator = match (&test_set, config.train.validate) {
            (Some(pairs), true) => Some(Validator::new(pairs, &preprocess, &cache_dir, progress.clone())?),
            _ => None,
        };
        Ok(Self {
            train_set,
            loader,
            steps_per_epoch,
            validator,
        })
    }
}

/// The training identities and, for LFW protocols, the test pairs.
pub fn load_split(config: &TrainConfig) -> Result<(TrainSet, Option<PairSet>)> {
    let d = &config.data;
    if d.source == DataSource::Folder {
        let root = d.folder.clone().unwrap_or_default();
        let set = arcface_data::scan_folder(&root)
            ?;
        return Ok((set.filter_min_images(d.min_images), None));
    }
    let lfw_dir = d.lfw_dir();
    let lfw =
        Lfw::open(&lfw_dir)?;
    let split = lfw.split(&d.protocol)?;
    Ok((
        split.train.filter_min_images(d.min_images),
        Some(split.test),
    ))
}

/// The crop of the config (the data crate's LFW box by default), resized to the input side.
fn preprocess(config: &TrainConfig, bb_cfg: &arcface_backbone::Config) -> Preprocess {
    let crop = match config.data.crop {
        Some([x, y, width, height]) => arcface_data::CropBox {
            x,
            y,
            width,
            height,
        },
        None => arcface_data::CropBox::LFW,
    };
    Preprocess {
        crop,
        size: bb_cfg.input_size,
        align: config.data.align,
    }
}

/// Caches the training images in `cache_dir` and wraps them in a shuffling loader.
fn training_loader(
    config: &TrainConfig,
    train_set: &TrainSet,
    preprocess: &Preprocess,
    cache_dir: &Path,
    progress: Progress,
) -> Result<Loader> {
    let cache = ImageCache::build_or_open(&train_set.paths, preprocess, cache_dir, progress)
        ?;
    let loader = Loader::new(Arc::new(cache), train_set.labels.clone(), loader_config(config))?;
    Ok(loader)
}

/// The loader settings of `config`: its batch size, seed, `[data] flip` and prefetch, and the
/// `[augment]` table as it is.
pub(crate) fn loader_config(config: &TrainConfig) -> LoaderConfig {
    LoaderConfig {
        batch_size: config.train.batch_size,
        seed: config.seed,
        flip: config.data.flip,
        augment: config.augment,
        drop_last: true,
        prefetch: config.data.prefetch.max(1),
        shuffle: true,
        threads: 0,
    }
}

/// `model.json` of a run of `config`: the backbone shape, the preprocessing, the loss and the
/// protocol. The config's loss and protocol fields are read here only.
pub fn model_info(
    config: &TrainConfig,
    bb: &arcface_backbone::Config,
    preprocess: &Preprocess,
) -> arcface_eval::ModelInfo {
    let protocol = match config.data.source {
        DataSource::Folder => "folder",
        DataSource::Lfw => config.data.protocol.name(),
    };
    arcface_eval::ModelInfo {
        backbone: *bb,
        preprocess: *preprocess,
        loss: config.loss.margin.name().into(),
        protocol: protocol.into(),
        fold: config.data.protocol.fold(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_loader_gets_the_augment_table_and_the_flip() {
        let text = include_str!("../../tests/fixtures/augment.toml");
        let config = TrainConfig::from_toml_str(text, Path::new("augment.toml")).unwrap();
        let l = loader_config(&config);
        assert_eq!((l.seed, l.flip, l.batch_size), (7, true, 4));
        assert_eq!(l.augment, config.augment);
        assert_eq!((l.augment.rotate, l.augment.blur_sigma), (8.0, [0.3, 1.2]));
        assert_ne!(l.augment, arcface_data::Augment::default());
        let no_flip = TrainConfig::from_toml_str(&text.replace("flip = true", "flip = false"), Path::new("a.toml"));
        assert!(!loader_config(&no_flip.unwrap()).flip);
    }
}
