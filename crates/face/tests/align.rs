//! `norm_crop` against InsightFace's (skimage `SimilarityTransform` + OpenCV `warpAffine`):
//! fixture and generating script in `tests/fixtures/` (`make_align_fixture.py`).
//!
//! The synthetic pictures need no file. The 100 LFW photos (when `data/lfw` is there, as in
//! CI) are decoded by `load_photo`, libjpeg-turbo as in OpenCV, so the remaining differences
//! are the warp's rounding; crops are compared by the mean difference per pixel, which the
//! acceptance asks to be within 1/255.

use std::path::{Path, PathBuf};

use arcface_face::{norm_crop, Similarity, ARCFACE_TEMPLATE};
use base64::Engine;
use image::{Rgb, RgbImage};
use serde_json::Value;

fn fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/align.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn landmarks(case: &Value) -> [[f32; 2]; 5] {
    let l = case["landmarks"].as_array().unwrap();
    std::array::from_fn(|i| [l[i][0].as_f64().unwrap() as f32, l[i][1].as_f64().unwrap() as f32])
}

fn png(case: &Value) -> RgbImage {
    let bytes = base64::engine::general_purpose::STANDARD.decode(case["crop_png"].as_str().unwrap()).unwrap();
    image::load_from_memory(&bytes).unwrap().to_rgb8()
}

/// The picture of the fixture script's `synthetic(h, w)`.
fn synthetic(h: u32, w: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| Rgb(std::array::from_fn(|c| ((x * 7 + y * 13 + c as u32 * 50 + (x * y) / 17) % 256) as u8)))
}

fn assert_matrix(case: &Value, lmk: &[[f32; 2]; 5]) {
    let m = Similarity::estimate(lmk, &ARCFACE_TEMPLATE).unwrap().matrix();
    let want = case["matrix"].as_array().unwrap();
    for r in 0..2 {
        for c in 0..3 {
            let w = want[r][c].as_f64().unwrap();
            // skimage works in the landmarks' float32: 1e-7 relative apart, far below a pixel.
            assert!((m[r][c] - w).abs() < 1e-5 * (1.0 + w.abs()), "matrix {m:?} vs skimage {want:?}");
        }
    }
}

/// Mean absolute difference per channel value, the number of differing values, the largest.
fn difference(a: &RgbImage, b: &RgbImage) -> (f64, usize, u32) {
    assert_eq!(a.dimensions(), b.dimensions());
    let diffs: Vec<u32> = a.as_raw().iter().zip(b.as_raw()).map(|(&x, &y)| (x as i32 - y as i32).unsigned_abs()).collect();
    let mean = diffs.iter().sum::<u32>() as f64 / diffs.len() as f64;
    (mean, diffs.iter().filter(|&&d| d > 0).count(), diffs.iter().copied().max().unwrap_or(0))
}

#[test]
fn synthetic_crops_match_opencv() {
    let fx = fixture();
    for case in fx["synthetic"].as_array().unwrap() {
        let (h, w) = (case["height"].as_u64().unwrap() as u32, case["width"].as_u64().unwrap() as u32);
        let lmk = landmarks(case);
        assert_matrix(case, &lmk);
        let ours = norm_crop(&synthetic(h, w), &lmk, 112).unwrap();
        let (mean, differing, max) = difference(&ours, &png(case));
        eprintln!("{h}x{w}: mean difference {mean:.4} levels, {differing} of {} values differ", 112 * 112 * 3);
        // Same decoded pixels on both sides: only rounding at exact half-way blends may differ.
        assert!(max <= 1 && differing <= 40, "{h}x{w}: {differing} values differ, by up to {max}");
    }
}

#[test]
fn lfw_crops_match_insightface_norm_crop() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/lfw/lfw-deepfunneled");
    if !root.is_dir() {
        eprintln!("{} not found: the LFW cases are skipped (the synthetic ones still run)", root.display());
        return;
    }
    let fx = fixture();
    let cases = fx["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 100);
    let mut worst = 0.0f64;
    for case in cases {
        let path: PathBuf = root.join(case["image"].as_str().unwrap());
        let photo = arcface_face::load_photo(&path).unwrap();
        let photo = match case["variant"].as_str().unwrap() {
            "scaled" => RgbImage::from_fn(photo.width() * 2, photo.height() * 2, |x, y| *photo.get_pixel(x / 2, y / 2)),
            "canvas" => {
                let mut big = RgbImage::new(520, 400);
                image::imageops::replace(&mut big, &photo, 200, 60);
                big
            }
            _ => photo,
        };
        let lmk = landmarks(case);
        assert_matrix(case, &lmk);
        let ours = norm_crop(&photo, &lmk, 112).unwrap();
        let n = ours.as_raw().len() as f64;
        let sum: u64 = ours.as_raw().iter().map(|&v| v as u64).sum();
        let mean_sum_gap = (sum as f64 - case["crop_sum"].as_u64().unwrap() as f64).abs() / n;
        assert!(mean_sum_gap <= 1.0, "{path:?}: mean level differs by {mean_sum_gap}");
        if !case["crop_png"].is_null() {
            let (mean, differing, _) = difference(&ours, &png(case));
            eprintln!("{path:?}: mean difference {mean:.4} levels, {differing} values differ");
            worst = worst.max(mean);
            assert!(mean <= 1.0, "{path:?}: mean difference {mean} levels (> 1/255)");
        }
    }
    eprintln!("worst mean difference on the full-crop cases: {worst:.3} levels");
}
