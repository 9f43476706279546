//! `.bin` reading against `fixtures/mini.bin`, written with Python's pickle exactly as
//! InsightFace writes lfw.bin by `fixtures/make_bin_fixture.py` (4 pairs of real LFW JPEGs
//! from arcface-data's lfw-mini fixture; `mini_bin_images.txt` lists them in order).

use std::path::{Path, PathBuf};

use arcface_eval::bin::{parse_bin, read_bin};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn reads_insightface_pickle() {
    let set = read_bin(&fixtures().join("mini.bin")).unwrap();
    assert_eq!(set.issame, vec![true, false, true, false]);
    assert_eq!(set.images.len(), 8);
    let list = std::fs::read_to_string(fixtures().join("mini_bin_images.txt")).unwrap();
    let lfw = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/tests/fixtures/lfw-mini/lfw-deepfunneled");
    for (img, line) in set.images.iter().zip(list.lines()) {
        let (name, len) = line.split_once('\t').unwrap();
        assert_eq!(img.len(), len.parse::<usize>().unwrap(), "{name}");
        assert_eq!(img, &std::fs::read(lfw.join(name)).unwrap(), "{name}");
        assert_eq!(&img[..2], &[0xFF, 0xD8], "JPEG magic");
    }
}

#[test]
fn truncated_and_corrupt_files_are_clear_errors() {
    let bytes = std::fs::read(fixtures().join("mini.bin")).unwrap();
    let p = Path::new("cut.bin");
    let e = parse_bin(&bytes[..bytes.len() / 2], p)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("cut.bin: not a readable pickle"), "{e}");
    let mut bad = bytes.clone();
    bad[0] = b'x';
    let e = parse_bin(&bad, p).unwrap_err().to_string();
    assert!(e.contains("cut.bin"), "{e}");
    let e = read_bin(Path::new("/nonexistent/lfw.bin"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/lfw.bin"), "{e}");
}

#[test]
fn numpy_image_arrays_are_rejected_clearly() {
    // fixtures/numpy_images.bin: images pickled as numpy uint8 arrays (make_bin_fixture.py).
    let e = read_bin(&fixtures().join("numpy_images.bin"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("numpy_images.bin"), "{e}");
    assert!(
        e.contains("image 0 is not bytes (numpy arrays are not supported"),
        "{e}"
    );
}
