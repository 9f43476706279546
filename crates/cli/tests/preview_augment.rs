//! `arcface preview --augment`: a grid of photos as the training loader augments them, one
//! row per photo (the cached crop, then epochs 0, 1, ...), from a config's `[augment]` table.

mod common;

use common::*;

#[test]
fn preview_augment_draws_rows_of_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("aug.png");
    let config = workspace().join("crates/train/tests/fixtures/augment.toml");
    let run = |extra: &[&str]| {
        arcface()
            .arg("preview")
            .arg("--lfw")
            .arg(lfw_mini())
            .args(["--count", "6", "--cols", "3", "--size", "48", "--out"])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap()
    };
    let done = run(&["--augment", config.to_str().unwrap()]);
    let (code, err) = code_and_err(&done);
    assert_eq!(code, Some(0), "{err}");
    let grid = image::open(&out).unwrap().to_rgb8();
    // 2 photos x (crop + 2 epochs) of 48 px with 2-px gaps.
    assert_eq!(grid.dimensions(), (3 * 50 + 2, 2 * 50 + 2));
    let grid = &grid;
    let tile = |col: u32, row: u32| {
        let (x, y) = (2 + col * 50, 2 + row * 50);
        (0..48).flat_map(|j| (0..48).map(move |i| grid.get_pixel(x + i, y + j).0)).collect::<Vec<_>>()
    };
    assert_ne!(tile(0, 0), tile(1, 0), "epoch 0 is augmented");
    assert_ne!(tile(1, 0), tile(2, 0), "epochs differ");
    assert_ne!(tile(0, 0), tile(0, 1), "rows are different photos");
    // The same command draws the same grid.
    let first = std::fs::read(&out).unwrap();
    assert_eq!(run(&["--augment", config.to_str().unwrap()]).status.code(), Some(0));
    assert_eq!(std::fs::read(&out).unwrap(), first);
    // A bad table is refused with its key, before anything is drawn.
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, std::fs::read_to_string(&config).unwrap().replace("rotate = 8.0", "rotate = -8.0")).unwrap();
    let (code, err) = code_and_err(&run(&["--augment", bad.to_str().unwrap()]));
    assert_ne!(code, Some(0));
    assert!(err.contains("augment.rotate"), "{err}");
}
