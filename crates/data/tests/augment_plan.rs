//! Augmentation through the public API: the pixels of an image are a pure function of
//! (seed, epoch, index), and settings that change nothing give the input byte for byte.

use arcface_data::augment::{Affine, ColorOp, Plan};
use arcface_data::{Augment, Border};

const S: usize = 32;

fn face() -> Vec<u8> {
    (0..S * S * 3).map(|k| ((k * 7919 + k / 97) % 256) as u8).collect()
}

fn full() -> Augment {
    Augment {
        scale: [0.6, 1.3],
        aspect: [0.75, 1.33],
        translate: 0.1,
        rotate: 20.0,
        border: Border::Replicate,
        brightness: 0.4,
        contrast: 0.4,
        saturation: 0.4,
        grayscale: 0.5,
        blur: 0.5,
        blur_sigma: [0.3, 1.5],
    }
}

fn augmented(a: &Augment, seed: u64, epoch: u64, index: u64) -> Vec<u8> {
    a.plan(true, seed, epoch, index, S, S).apply(&face(), S, S)
}

#[test]
fn same_seed_epoch_and_index_give_the_same_bytes() {
    let a = full();
    for index in 0..20 {
        let first = augmented(&a, 5, 2, index);
        assert_eq!(first, augmented(&a, 5, 2, index), "image {index}");
        assert_ne!(first, face(), "image {index} was left alone");
        assert_ne!(first, augmented(&a, 5, 3, index), "epoch 3 repeats epoch 2 on image {index}");
        assert_ne!(first, augmented(&a, 6, 2, index), "seed 6 repeats seed 5 on image {index}");
    }
    // Computed in parallel, in any order: the same bytes.
    let serial: Vec<Vec<u8>> = (0..20).map(|i| augmented(&a, 5, 2, i)).collect();
    let a = &a;
    let mut parallel: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20).rev().map(|i| s.spawn(move || augmented(a, 5, 2, i))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    parallel.reverse();
    assert_eq!(serial, parallel);
}

#[test]
fn identity_settings_give_exactly_the_input() {
    let src = face();
    let none = Augment::default();
    for index in 0..10 {
        assert_eq!(none.plan(false, 1, 0, index, S, S).apply(&src, S, S), src);
        // Jitter ranges of width zero around the identity: no change either.
        let zero = Augment { brightness: 0.0, blur: 0.0, grayscale: 0.0, ..none };
        assert_eq!(zero.plan(false, 1, 0, index, S, S).apply(&src, S, S), src);
    }
    // Every step run, each with its neutral value.
    let plan = Plan {
        flip: false,
        warp: Some(Affine::IDENTITY),
        border: Border::Reflect,
        color: vec![(ColorOp::Contrast, 1.0), (ColorOp::Brightness, 1.0), (ColorOp::Saturation, 1.0)],
        grayscale: false,
        blur_sigma: None,
    };
    assert_eq!(plan.apply(&src, S, S), src);
    // A double flip through the warp is the identity too.
    let mut twice = Plan { warp: Some(Affine::jitter(S, S, 1.0, 1.0, [0.0; 2], 0.0, true)), ..plan.clone() };
    let once = twice.apply(&src, S, S);
    assert_ne!(once, src);
    twice.warp = Some(Affine::jitter(S, S, 1.0, 1.0, [0.0; 2], 0.0, true));
    assert_eq!(twice.apply(&once, S, S), src);
}
