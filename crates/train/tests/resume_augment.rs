//! Augmentation and exact resume: with every `[augment]` step on, a run stopped mid-epoch and
//! resumed ends with the same weights as a straight run, because each image's augmentation
//! is a function of (seed, epoch, index) only; and the table does reach the loader.

mod common;

use arcface_train::{train_with_stop, RunOptions, StopFlag};

const AUGMENT: &str = "
[augment]
scale = [0.7, 1.1]
aspect = [0.8, 1.25]
translate = 0.1
rotate = 15.0
brightness = 0.3
contrast = 0.3
saturation = 0.3
grayscale = 0.3
blur = 0.5
";

fn opts(dir: &std::path::Path, resume: bool) -> RunOptions {
    RunOptions {
        out: dir.to_path_buf(),
        resume,
        device: candle::Device::Cpu,
        kernels: Default::default(),
        progress: arcface_data::Progress::Silent,
    }
}

#[test]
fn augmented_resume_is_bit_identical_and_augmentation_changes_training() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let weights = |dir: &std::path::Path| std::fs::read(dir.join("model.safetensors")).unwrap();

    let straight = tmp.path().join("straight");
    let cfg = common::tiny(&cache, &format!("checkpoint_every = 1\n{AUGMENT}"), 0.1);
    assert_eq!(train_with_stop(&cfg, &opts(&straight, false), &StopFlag::new()).unwrap().steps, 6);

    // Stopped after 4 steps (mid-epoch 1), then resumed with the full recipe.
    let split = tmp.path().join("split");
    let first = common::tiny(&cache, &format!("checkpoint_every = 1\nmax_steps = 4\n{AUGMENT}"), 0.1);
    assert_eq!(train_with_stop(&first, &opts(&split, false), &StopFlag::new()).unwrap().steps, 4);
    assert_eq!(train_with_stop(&cfg, &opts(&split, true), &StopFlag::new()).unwrap().steps, 6);
    assert!(weights(&straight) == weights(&split), "resumed weights differ from the straight run");

    // The same recipe without the table (flip only) trains to other weights.
    let plain = tmp.path().join("plain");
    let cfg = common::tiny(&cache, "checkpoint_every = 1", 0.1);
    train_with_stop(&cfg, &opts(&plain, false), &StopFlag::new()).unwrap();
    assert!(weights(&straight) != weights(&plain), "the [augment] table did not reach the loader");
}
