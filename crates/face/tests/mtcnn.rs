//! MTCNN against facenet-pytorch 2.6.0 on 120 LFW photos in four variants (as they are,
//! doubled, halved, and two faces on a larger canvas): fixture and generating script in
//! `tests/fixtures/` (`make_mtcnn_fixture.py`). Needs `data/lfw` and the MTCNN weights
//! (`data/mtcnn`, or `../shared/data/mtcnn` beside the repository); skipped without them.
//!
//! Both sides decode the JPEGs with libjpeg-turbo, so they see the same pixels and agree to
//! float rounding. The acceptance bounds are asserted (matched boxes IoU >= 0.95, landmarks
//! within 0.5 px on average and 2 px at worst, the same number of faces on >= 97% of the
//! photos, aligned crops within 1/255 per pixel on average), and tighter ones that catch a
//! drift long before it reaches them.

use std::path::{Path, PathBuf};

use arcface_face::{load_photo, norm_crop, Face, Mtcnn};
use base64::Engine;
use image::RgbImage;
use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn weights_dir() -> Option<PathBuf> {
    [workspace().join("data/mtcnn"), workspace().join("../shared/data/mtcnn")]
        .into_iter()
        .find(|d| d.join("onet.pt").is_file())
}

fn lfw_dir() -> Option<PathBuf> {
    Some(workspace().join("data/lfw/lfw-deepfunneled")).filter(|d| d.is_dir())
}

/// The fixture script's `halve`: each 2x2 block averaged, rounding half up.
fn halve(img: &RgbImage) -> RgbImage {
    RgbImage::from_fn(img.width() / 2, img.height() / 2, |x, y| {
        image::Rgb(std::array::from_fn(|c| {
            let s: u32 = [(0, 0), (1, 0), (0, 1), (1, 1)]
                .iter()
                .map(|(dx, dy)| img.get_pixel(2 * x + dx, 2 * y + dy)[c] as u32)
                .sum();
            ((s + 2) / 4) as u8
        }))
    })
}

/// The fixture script's `variant_image`.
fn variant(img: &RgbImage, name: &str) -> RgbImage {
    match name {
        "scaled" => RgbImage::from_fn(img.width() * 2, img.height() * 2, |x, y| *img.get_pixel(x / 2, y / 2)),
        "halved" => halve(img),
        "canvas" => {
            let mut big = RgbImage::new(640, 480);
            image::imageops::replace(&mut big, img, 300, 130);
            image::imageops::replace(&mut big, &halve(img), 40, 300);
            big
        }
        _ => img.clone(),
    }
}

fn reference_faces(case: &Value) -> Vec<Face> {
    let f = |v: &Value| v.as_f64().unwrap() as f32;
    case["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|face| {
            let b = face["box"].as_array().unwrap();
            let l = face["landmarks"].as_array().unwrap();
            Face {
                bbox: std::array::from_fn(|i| f(&b[i])),
                score: f(&face["score"]),
                landmarks: std::array::from_fn(|i| [f(&l[i][0]), f(&l[i][1])]),
            }
        })
        .collect()
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let area = |r: &[f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    w * h / (area(a) + area(b) - w * h)
}

fn largest(faces: &[Face]) -> &Face {
    faces.iter().max_by(|a, b| a.area().total_cmp(&b.area())).unwrap()
}

fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    let s: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| x.abs_diff(*y) as u64).sum();
    s as f64 / a.as_raw().len() as f64
}

#[test]
fn mtcnn_matches_facenet_pytorch_on_lfw() {
    let (Some(weights), Some(lfw)) = (weights_dir(), lfw_dir()) else {
        eprintln!("skipped: needs data/lfw and the MTCNN weights (cargo xtask download mtcnn)");
        return;
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mtcnn.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mtcnn = Mtcnn::load(&weights, &candle::Device::Cpu).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 100);

    let (mut same_count, mut ious, mut dists) = (0usize, Vec::new(), Vec::<f32>::new());
    let (mut crop_gaps, mut png_gaps) = (Vec::new(), Vec::new());
    for case in cases {
        let name = case["image"].as_str().unwrap();
        let photo = load_photo(&lfw.join(name)).unwrap();
        let img = variant(&photo, case["variant"].as_str().unwrap());
        assert_eq!((img.width() as u64, img.height() as u64), (case["width"].as_u64().unwrap(), case["height"].as_u64().unwrap()));
        let ours = mtcnn.detect(&img).unwrap();
        let want = reference_faces(case);
        if ours.len() == want.len() {
            same_count += 1;
        } else {
            eprintln!("{name} ({}): {} faces, facenet-pytorch {}", case["variant"], ours.len(), want.len());
        }
        // Each reference face against our best-overlapping one.
        for w in &want {
            let Some(o) = ours.iter().max_by(|a, b| iou(&a.bbox, &w.bbox).total_cmp(&iou(&b.bbox, &w.bbox))) else {
                continue;
            };
            let v = iou(&o.bbox, &w.bbox);
            if v < 0.5 {
                continue; // a face one side missed: counted above
            }
            ious.push(v);
            for (p, q) in o.landmarks.iter().zip(&w.landmarks) {
                dists.push(((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt());
            }
        }
        if want.is_empty() || ours.is_empty() {
            continue;
        }
        let ours_crop = norm_crop(&img, &largest(&ours).landmarks, 112).unwrap();
        let their_lmk_crop = norm_crop(&img, &largest(&want).landmarks, 112).unwrap();
        crop_gaps.push(mean_abs_diff(&ours_crop, &their_lmk_crop));
        if let Some(png) = case["crop_png"].as_str() {
            let bytes = base64::engine::general_purpose::STANDARD.decode(png).unwrap();
            let reference = image::load_from_memory(&bytes).unwrap().to_rgb8();
            png_gaps.push(mean_abs_diff(&ours_crop, &reference));
        }
    }
    let n = cases.len();
    let min_iou = ious.iter().cloned().fold(f32::INFINITY, f32::min);
    let mean_dist = dists.iter().sum::<f32>() / dists.len() as f32;
    let max_dist = dists.iter().cloned().fold(0.0, f32::max);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let max = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    eprintln!(
        "same face count on {same_count}/{n} photos; {} matched faces: min IoU {min_iou:.4}, landmarks mean {mean_dist:.3} px, max {max_dist:.3} px; \
         aligned crops vs facenet landmarks: mean {:.3} (max {:.3}) levels over {} photos; vs InsightFace norm_crop PNGs: mean {:.3} (max {:.3}) over {}",
        ious.len(),
        mean(&crop_gaps),
        max(&crop_gaps),
        crop_gaps.len(),
        mean(&png_gaps),
        max(&png_gaps),
        png_gaps.len()
    );
    assert!(same_count as f64 >= 0.97 * n as f64, "same count on {same_count}/{n}");
    assert!(min_iou >= 0.95, "min IoU {min_iou}");
    assert!(mean_dist <= 0.5 && max_dist <= 2.0, "landmarks mean {mean_dist} max {max_dist}");
    assert!(mean(&crop_gaps) <= 1.0 && mean(&png_gaps) <= 1.0);
    assert!(png_gaps.len() >= 10);
    assert!(min_iou >= 0.999 && max_dist <= 0.01 && max(&crop_gaps) <= 0.1, "drifted from facenet-pytorch");
}
