//! Photos in pixel formats the `image` crate cannot write (fixtures and generating script in
//! `tests/fixtures/make_photo_fixtures.py`).

use std::path::Path;

use arcface_face::load_photo;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[test]
fn a_cmyk_jpeg_reads_as_the_same_rgb_photo() {
    let cmyk = load_photo(&fixture("cmyk.jpg")).unwrap();
    let rgb = load_photo(&fixture("rgb.png")).unwrap();
    assert_eq!(cmyk.dimensions(), rgb.dimensions());
    let gap: u64 = cmyk.as_raw().iter().zip(rgb.as_raw()).map(|(a, b)| a.abs_diff(*b) as u64).sum();
    let mean = gap as f64 / rgb.as_raw().len() as f64;
    // Pillow's RGB -> CMYK is the naive 255 - x; JPEG compression adds a few levels.
    assert!(mean < 6.0, "mean difference {mean}");
}
