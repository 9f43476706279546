//! The augmentation steps against independent references, from
//! `fixtures/augment/make_augment.py` (numpy, OpenCV and torchvision on a 24x18 image):
//! the warp against a float64 numpy bilinear sampler over a padded copy and against
//! `cv2.warpAffine`, the colour jitter and grayscale bit for bit against torchvision, the
//! blur against torchvision's `gaussian_blur` (bit for bit) and `cv2.GaussianBlur`.

use arcface_data::augment::{
    adjust_brightness, adjust_contrast, adjust_saturation, gaussian_blur, kernel_size, to_grayscale, warp_affine,
    Affine,
};
use arcface_data::Border;
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/augment/augment.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

/// (largest absolute difference, number of differing values).
fn compare(a: &[u8], b: &[u8]) -> (u8, usize) {
    assert_eq!(a.len(), b.len());
    let diffs = a.iter().zip(b).map(|(x, y)| x.abs_diff(*y));
    (diffs.clone().max().unwrap_or(0), diffs.filter(|&d| d > 0).count())
}

struct Image {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

fn source(f: &Value) -> Image {
    let dim = |k: &str| f[k].as_u64().expect("size") as usize;
    Image { width: dim("width"), height: dim("height"), pixels: bytes(&f["source"]) }
}

#[test]
fn warp_matches_numpy_and_opencv() {
    let f = fixture();
    let src = source(&f);
    let warps = f["warps"].as_array().expect("warps");
    assert_eq!(warps.len(), 6);
    for w in warps {
        let rows: Vec<Vec<f64>> = serde_json::from_value(w["matrix"].clone()).expect("matrix");
        let m = Affine([[rows[0][0], rows[0][1], rows[0][2]], [rows[1][0], rows[1][1], rows[1][2]]]);
        let border = match w["border"].as_str() {
            Some("replicate") => Border::Replicate,
            Some("reflect") => Border::Reflect,
            other => panic!("border {other:?}"),
        };
        let mut out = vec![0; src.pixels.len()];
        warp_affine(&src.pixels, src.width, src.height, &m, border, &mut out);
        // numpy samples the same points in float64: only f32 rounding of a value near .5
        // may land on the other side.
        let (max, n) = compare(&out, &bytes(&w["numpy"]));
        eprintln!("numpy {border:?} {rows:?}: max {max}, {n} differ");
        let (m2, n2) = compare(&out, &bytes(&w["opencv"]));
        eprintln!("opencv {border:?} {rows:?}: max {m2}, {n2} differ");
        assert!(max <= 1 && n <= out.len() / 200, "numpy {border:?} {rows:?}: max {max}, {n} differ");
        // OpenCV rounds coordinates to 1/32 pixel and blends in fixed point.
        let (max, n) = compare(&out, &bytes(&w["opencv"]));
        assert!(max <= 2 && n <= out.len() / 4, "opencv {border:?} {rows:?}: max {max}, {n} differ");
        // Far from the numpy result would mean a wrong border or matrix, not rounding:
        // the unwarped source is that far away.
        assert!(compare(&out, &src.pixels).0 > 20);
    }
}

#[test]
fn colour_jitter_equals_torchvision() {
    let f = fixture();
    let src = source(&f);
    let cases = f["color"].as_array().expect("color");
    assert_eq!(cases.len(), 9);
    for c in cases {
        let factor = c["factor"].as_f64().expect("factor");
        let mut px = src.pixels.clone();
        match c["op"].as_str() {
            Some("brightness") => adjust_brightness(&mut px, factor),
            Some("contrast") => adjust_contrast(&mut px, factor),
            Some("saturation") => adjust_saturation(&mut px, factor),
            other => panic!("op {other:?}"),
        }
        assert_eq!(compare(&px, &bytes(&c["torchvision"])), (0, 0), "{} {factor}", c["op"]);
    }
}

#[test]
fn grayscale_equals_torchvision() {
    let f = fixture();
    let mut px = source(&f).pixels;
    to_grayscale(&mut px);
    assert_eq!(compare(&px, &bytes(&f["grayscale"])), (0, 0));
}

#[test]
fn blur_matches_opencv_and_torchvision() {
    let f = fixture();
    let src = source(&f);
    for b in f["blur"].as_array().expect("blur") {
        let sigma = b["sigma"].as_f64().expect("sigma");
        assert_eq!(kernel_size(sigma) as u64, b["kernel_size"].as_u64().expect("size"));
        let mut px = src.pixels.clone();
        gaussian_blur(&mut px, src.width, src.height, sigma);
        // torchvision convolves in f32 too and rounds once: equal bytes on this fixture.
        assert_eq!(compare(&px, &bytes(&b["torchvision"])), (0, 0), "torchvision sigma {sigma}");
        // OpenCV's u8 path is fixed point: 41-83 of the 1296 values differ, by one.
        let (max, n) = compare(&px, &bytes(&b["opencv"]));
        assert!(max <= 1 && n <= px.len() / 10, "opencv sigma {sigma}: max {max}, {n} differ");
        assert!(compare(&px, &src.pixels).0 > 10, "the blur did something");
    }
}
