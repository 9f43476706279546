//! arcface-data: LFW and folder datasets, protocol files, preprocessing, augmentation,
//! a memory-mapped preprocessed cache and a parallel prefetching loader.
#![warn(missing_docs)]

pub mod download;
