//! Evaluating a `.bin` whose images are not what a verification set holds: mixed sizes (the
//! crop is the whole first image, so a face of another size would be scored at another scale
//! without a word) and an image that does not decode, whose error must name the `.bin`.

mod common;

use std::io::Cursor;
use std::path::Path;

use arcface_eval::run::{EvalOptions, ModelSource, PairSource};
use arcface_eval::{eval_run, read_bin};
use common::*;
use serde_pickle::Value;

/// mini.bin with `edit` applied to its images, pickled as InsightFace does, at `path`.
fn edited_bin(path: &Path, edit: impl FnOnce(&mut Vec<Vec<u8>>)) {
    let set = read_bin(&fixtures().join("mini.bin")).unwrap();
    let mut images = set.images;
    edit(&mut images);
    let v = Value::Tuple(vec![
        Value::List(images.into_iter().map(Value::Bytes).collect()),
        Value::List(set.issame.into_iter().map(Value::Bool).collect()),
    ]);
    std::fs::write(path, serde_pickle::value_to_vec(&v, serde_pickle::SerOptions::new()).unwrap()).unwrap();
}

fn eval_bin(dir: &Path, bin: &Path) -> String {
    let run = make_run(&dir.join("run"), 5);
    let mut o = EvalOptions::new(Some(ModelSource::Run(run)), PairSource::Bin(bin.to_path_buf()));
    o.device = candle::Device::Cpu;
    o.embed.progress = arcface_data::Progress::Silent;
    o.out_dir = Some(dir.join("out"));
    let e = eval_run(&o).expect_err("a broken .bin must not give a number").to_string();
    assert!(!dir.join("out/eval.json").exists(), "nothing written: {e}");
    e
}

#[test]
fn a_bin_with_mixed_image_sizes_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("mixed.bin");
    edited_bin(&bin, |images| {
        let img = image::load_from_memory(&images[3]).unwrap().resize_exact(300, 300, image::imageops::FilterType::Triangle);
        let mut png = Vec::new();
        img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        images[3] = png;
    });
    let e = eval_bin(tmp.path(), &bin);
    assert!(e.contains("mixed.bin") && e.contains("image 3 is 300x300") && e.contains("250x250"), "{e}");
}

#[test]
fn an_undecodable_bin_image_names_the_bin() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("broken.bin");
    // Its header reads (the size check passes); the decoder fails on the cut body.
    edited_bin(&bin, |images| {
        let half = images[5].len() / 2;
        images[5].truncate(half)
    });
    let e = eval_bin(tmp.path(), &bin);
    assert!(e.contains("broken.bin: image 5") && e.contains("truncated"), "{e}");
    edited_bin(&bin, |images| images[6] = b"not an image".to_vec());
    let e = eval_bin(tmp.path(), &bin);
    assert!(e.contains("broken.bin") && e.contains("image 6 does not decode"), "{e}");
}
