//! arcface-data: LFW and folder datasets, protocol files, preprocessing, augmentation,
//! a memory-mapped preprocessed cache and a parallel prefetching loader.
//!
//! Typical use: [`Lfw::open`] then [`Lfw::split`] (or [`scan_folder`]) gives image paths;
//! [`ImageCache::build_or_open`] preprocesses them once with a [`Preprocess`]; a [`Loader`]
//! yields shuffled, augmented ([`Augment`]) [`Batch`]es; [`EvalBatches`] decodes test images in order.
#![warn(missing_docs)]

pub mod augment;
pub mod cache;
pub mod download;
pub mod error;
pub mod faces;
pub mod folder;
pub mod lfw;
pub mod loader;
pub mod prefetch;
pub mod preprocess;
pub mod progress;
pub mod protocol;
pub mod sets;

pub use augment::{Augment, Border};
pub use cache::ImageCache;
pub use error::{DataError, Result};
pub use folder::scan_folder;
pub use lfw::{Lfw, Protocol, Split};
pub use loader::{Batch, EvalBatch, EvalBatches, Loader, LoaderConfig};
pub use preprocess::{images_to_tensor, preview_grid, Align, CropBox, Preprocess};
pub use progress::{Progress, ProgressSink, Reporter, Task, TaskProgress, Unit};
pub use protocol::{ImageRef, Pair};
pub use sets::{IndexPair, PairSet, TrainSet};

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
