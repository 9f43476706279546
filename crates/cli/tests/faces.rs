//! `detect`, `align`, and the face handling of `verify` / `embed` on real photos (arcface-data's
//! lfw-mini JPEGs, and copies doubled, EXIF-rotated, greyscale, on a canvas with a second face).
//! Needs the MTCNN weights (`data/mtcnn` after `cargo xtask download mtcnn`, or
//! `../shared/data/mtcnn` beside the repository); skipped without them.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use image::RgbImage;

fn weights() -> Option<PathBuf> {
    [workspace().join("data/mtcnn"), workspace().join("../shared/data/mtcnn")]
        .into_iter()
        .find(|d| d.join("onet.pt").is_file())
}

macro_rules! weights_or_skip {
    () => {
        match weights() {
            Some(w) => w,
            None => {
                eprintln!("skipped: no MTCNN weights (cargo xtask download mtcnn)");
                return;
            }
        }
    };
}

fn photo_rgb() -> RgbImage {
    image::open(photo()).unwrap().to_rgb8()
}

/// A JPEG of `img` carrying an EXIF orientation tag (APP1 right after the SOI marker).
fn jpeg_with_orientation(img: &RgbImage, orientation: u16, path: &Path) {
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgb8(img.clone())
        .write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .unwrap();
    let mut tiff = b"II*\0\x08\0\0\0\x01\0".to_vec(); // little-endian TIFF, IFD at 8, 1 entry
    tiff.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0]); // tag 0x0112, SHORT, count 1
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // value padding, no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    std::fs::write(path, out).unwrap();
}

fn verify(a: &Path, b: &Path, extra: &[&str], mtcnn: &Path) -> (Option<i32>, String, String) {
    let out = arcface()
        .arg("verify")
        .arg(a)
        .arg(b)
        .arg("--run")
        .arg(tiny_run())
        .args(["--threshold", "0.5", "--device", "cpu", "--mtcnn"])
        .arg(mtcnn)
        .args(extra)
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn similarity(stdout: &str) -> f64 {
    stdout.lines().find_map(|l| l.strip_prefix("similarity ")).unwrap().trim().parse().unwrap()
}

#[test]
fn detect_reports_each_face_with_landmarks_inside_its_box() {
    let mtcnn = weights_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.jpg"), b"not a photo").unwrap();
    std::fs::copy(photo(), dir.path().join("face.jpg")).unwrap();
    let json = dir.path().join("out/faces.json");
    std::fs::create_dir_all(json.parent().unwrap()).unwrap();
    let out = arcface().arg("detect").arg(dir.path()).arg("--json").arg(&json).arg("--mtcnn").arg(&mtcnn).output().unwrap();
    let (code, err) = code_and_err(&out);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("broken.jpg"), "the unreadable photo is reported: {err}");
    let list: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let broken = list.iter().find(|r| r["image"].as_str().unwrap().ends_with("broken.jpg")).unwrap();
    assert!(broken["error"].as_str().unwrap().contains("not a JPEG or PNG"));
    let face = list.iter().find(|r| r["image"].as_str().unwrap().ends_with("face.jpg")).unwrap();
    let faces = face["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1, "{faces:?}");
    let b: Vec<f64> = faces[0]["box"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert!(faces[0]["score"].as_f64().unwrap() > 0.9);
    for p in faces[0]["landmarks"].as_array().unwrap() {
        let (x, y) = (p[0].as_f64().unwrap(), p[1].as_f64().unwrap());
        assert!(x > b[0] && x < b[2] && y > b[1] && y < b[3], "landmark ({x}, {y}) outside {b:?}");
    }
}

#[test]
fn the_same_face_rescaled_rotated_or_in_grey_is_the_same_person() {
    let mtcnn = weights_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let img = photo_rgb();
    let doubled = dir.path().join("doubled.png");
    image::imageops::resize(&img, 500, 500, image::imageops::FilterType::CatmullRom).save(&doubled).unwrap();
    // Stored turned a quarter to the left, with orientation 6 ("rotate 90 clockwise to view").
    let rotated = dir.path().join("exif6.jpg");
    jpeg_with_orientation(&image::imageops::rotate270(&img), 6, &rotated);
    let grey = dir.path().join("grey.jpg");
    image::DynamicImage::ImageRgb8(img.clone()).grayscale().save(&grey).unwrap();
    // Larger than the 1280-pixel detection side: detected on a downscaled copy, cut from this.
    let huge = dir.path().join("huge.png");
    image::imageops::resize(&img, 2000, 2000, image::imageops::FilterType::Triangle).save(&huge).unwrap();
    for other in [&doubled, &rotated, &grey, &huge] {
        let (code, stdout, err) = verify(&photo(), other, &[], &mtcnn);
        assert_eq!(code, Some(0), "{}: {stdout}{err}", other.display());
        assert!(similarity(&stdout) > 0.8, "{}: {stdout}", other.display());
    }
    // The fixed LFW crop cannot follow the face into a 500x500 frame: what this replaces.
    let (_, stdout, _) = verify(&photo(), &doubled, &["--align", "center"], &mtcnn);
    let (_, aligned, _) = verify(&photo(), &doubled, &[], &mtcnn);
    assert!(similarity(&stdout) < similarity(&aligned), "center {stdout} vs aligned {aligned}");
}

#[test]
fn several_faces_use_the_largest_and_say_so_and_face_n_picks_another() {
    let mtcnn = weights_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let img = photo_rgb();
    let other = image::open(lfw_mini().join("lfw-deepfunneled/Adam_Sandler/Adam_Sandler_0001.jpg")).unwrap().to_rgb8();
    let mut canvas = RgbImage::new(700, 320);
    image::imageops::replace(&mut canvas, &img, 0, 30);
    image::imageops::replace(&mut canvas, &image::imageops::resize(&other, 180, 180, image::imageops::FilterType::Triangle), 480, 70);
    let group = dir.path().join("group.png");
    canvas.save(&group).unwrap();
    let (code, stdout, err) = verify(&photo(), &group, &[], &mtcnn);
    assert_eq!(code, Some(0), "{stdout}{err}");
    assert!(err.contains("2 faces found, using face") && err.contains("the largest"), "{err}");
    let largest = similarity(&stdout);
    // Faces are numbered by score: whichever number is the small face, one of 1 and 2 is it.
    let picks: Vec<f64> = ["1", "2"].iter().map(|n| similarity(&verify(&photo(), &group, &["--face", n], &mtcnn).1)).collect();
    assert!(picks.iter().any(|s| (s - largest).abs() < 1e-6) && picks.iter().any(|s| (s - largest).abs() > 1e-3), "{picks:?} vs {largest}");
    let (code, _, err) = verify(&photo(), &group, &["--face", "3"], &mtcnn);
    assert_eq!(code, Some(2));
    assert!(err.contains("face 3 asked for, but only 2 found") && err.contains("group.png"), "{err}");
}

#[test]
fn a_photo_without_a_face_exits_2_naming_it() {
    let mtcnn = weights_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let wall = dir.path().join("wall.jpg");
    RgbImage::from_pixel(300, 200, image::Rgb([120, 130, 140])).save(&wall).unwrap();
    let (code, stdout, err) = verify(&photo(), &wall, &[], &mtcnn);
    assert_eq!(code, Some(2), "{stdout}");
    assert!(err.contains("wall.jpg") && err.contains("no face found"), "{err}");
    let tiny = dir.path().join("tiny.png");
    RgbImage::from_pixel(8, 8, image::Rgb([0, 0, 0])).save(&tiny).unwrap();
    let (code, _, err) = verify(&photo(), &tiny, &[], &mtcnn);
    assert_eq!(code, Some(2));
    assert!(err.contains("tiny.png"), "{err}");
}

#[test]
fn an_aligned_face_is_accepted_as_it_is() {
    let mtcnn = weights_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let aligned = dir.path().join("aligned");
    let out = arcface().arg("align").arg("--input").arg(lfw_mini().join("lfw-deepfunneled/Aaron_Peirsol")).arg("--output").arg(&aligned).arg("--mtcnn").arg(&mtcnn).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let face = aligned.join("Aaron_Peirsol_0001.png");
    assert_eq!(image::image_dimensions(&face).unwrap(), (112, 112));
    // Before: a 112x112 face was refused with a crop error. Now it is used as given.
    let (code, stdout, err) = verify(&face, &face, &["--align", "none"], &mtcnn);
    assert_eq!(code, Some(0), "{stdout}{err}");
    assert!((similarity(&stdout) - 1.0).abs() < 1e-4);
}

#[test]
fn align_writes_a_png_per_photo_lists_the_failures_and_resumes() {
    let mtcnn = weights_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("photos");
    copy_dir(&lfw_mini().join("lfw-deepfunneled/Aaron_Peirsol"), &input.join("aaron"));
    std::fs::write(input.join("broken.jpg"), b"\xFF\xD8garbage").unwrap();
    RgbImage::from_pixel(200, 200, image::Rgb([90, 90, 90])).save(input.join("blank.png")).unwrap();
    let before = snapshot(&input);
    let output = dir.path().join("aligned");
    let run = || arcface().arg("align").arg("--input").arg(&input).arg("--output").arg(&output).arg("--mtcnn").arg(&mtcnn).output().unwrap();
    let out = run();
    let (code, err) = code_and_err(&out);
    assert_eq!(code, Some(0), "{err}");
    assert_unchanged(&before, "align");
    let photos: Vec<_> = std::fs::read_dir(input.join("aaron")).unwrap().map(|e| e.unwrap().file_name()).collect();
    for name in &photos {
        let png = output.join("aaron").join(Path::new(name).with_extension("png"));
        assert_eq!(image::image_dimensions(&png).unwrap(), (112, 112), "{}", png.display());
    }
    let tsv = std::fs::read_to_string(output.join("landmarks.tsv")).unwrap();
    assert_eq!(tsv.lines().count(), 1 + photos.len(), "{tsv}");
    let failed = std::fs::read_to_string(output.join("failed.tsv")).unwrap();
    assert!(failed.contains("broken.jpg\t") && failed.contains("blank.png\tno face found"), "{failed}");
    let again = run();
    assert!(String::from_utf8_lossy(&again.stdout).contains(&format!("({} already there, kept)", photos.len())));
    // The output folder may not sit inside the input (its PNGs would be read next time).
    let inside = arcface().arg("align").arg("--input").arg(&input).arg("--output").arg(input.join("out")).arg("--mtcnn").arg(&mtcnn).output().unwrap();
    assert_eq!(inside.status.code(), Some(2));
}

#[test]
fn embed_over_a_folder_skips_a_bad_photo_and_embeds_the_rest() {
    let mtcnn = weights_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("photos");
    copy_dir(&lfw_mini().join("lfw-deepfunneled/Aaron_Peirsol"), &input);
    std::fs::write(input.join("zz-broken.png"), b"\x89PNG\r\n\x1a\nbroken").unwrap();
    let good = std::fs::read_dir(&input).unwrap().count() - 1;
    let npy = dir.path().join("emb.npy");
    let out = arcface().arg("embed").arg("--run").arg(tiny_run()).arg("--input").arg(&input).arg("--output").arg(&npy).args(["--device", "cpu", "--mtcnn"]).arg(&mtcnn).output().unwrap();
    let (code, err) = code_and_err(&out);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("skipped") && err.contains("zz-broken.png"), "{err}");
    let list = std::fs::read_to_string(npy.with_extension("txt")).unwrap();
    assert_eq!(list.lines().count(), good);
    assert!(!list.contains("zz-broken"));
}
