//! Writes a compact copy of an extracted LFW, in the same layout, for machines that cannot
//! take the whole tree (the GPU machines take at most 64 MiB of carried files; the
//! deep-funneled tree is ~160 MB and the archive 109 MB). Each image is cropped to the
//! training box (68, 74, 114, 114), resized to `size` (112: what training feeds the network)
//! and re-encoded as JPEG. With `dev_min_images` K > 0 only the `dev` protocol is kept: the
//! `peopleDevTrain.txt` people with at least K images (the file is rewritten to list just
//! them) and the images that `pairsDevTest.txt` names. Train on the copy with
//! `crop = [0, 0, size, size]` and `--protocol dev --min-images K`.
//!
//! `cargo run --release -p arcface-data --example crop_copy -- data/lfw .gpu/lfw [size] [quality] [dev_min_images]`
//!
//! Measured: the whole tree at 114 px, quality 92: 70 MB; `112 85 3`: see the README of
//! scripts/gpu_check.sh.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use arcface_data::lfw::IMAGES_DIR;
use arcface_data::{CropBox, Lfw, Protocol};
use image::codecs::jpeg::JpegEncoder;
use rayon::prelude::*;

fn images_under(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for person in std::fs::read_dir(root).with_context(|| format!("listing {}", root.display()))? {
        let person = person?.path();
        if !person.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&person).with_context(|| format!("listing {}", person.display()))? {
            let f = f?.path();
            if f.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg")) {
                out.push(f);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The `dev` subset: rewrites `peopleDevTrain.txt` into `dst` with the people that have at least
/// `min_images` images, copies `pairsDevTest.txt`, and returns the images to keep.
fn dev_subset(src: &Path, dst: &Path, min_images: usize) -> anyhow::Result<Vec<PathBuf>> {
    let people_path = src.join("peopleDevTrain.txt");
    let text = std::fs::read_to_string(&people_path).with_context(|| format!("reading {}", people_path.display()))?;
    let mut kept = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let mut it = line.split_whitespace();
        let (Some(name), Some(count)) = (it.next(), it.next()) else {
            bail!("{}:{}: expected <name> <count>", people_path.display(), i + 1)
        };
        let count: usize = count.parse().with_context(|| format!("{}:{}: bad count", people_path.display(), i + 1))?;
        if count >= min_images {
            kept.push((name.to_string(), count));
        }
    }
    let mut people = format!("{}\n", kept.len());
    let mut files = Vec::new();
    for (name, count) in &kept {
        people.push_str(&format!("{name}\t{count}\n"));
        files.extend((1..=*count).map(|k| src.join(IMAGES_DIR).join(name).join(format!("{name}_{k:04}.jpg"))));
    }
    std::fs::write(dst.join("peopleDevTrain.txt"), people)?;
    let pairs = Lfw::open(src)?.split(&Protocol::Dev)?.test;
    files.extend(pairs.images);
    std::fs::copy(src.join("pairsDevTest.txt"), dst.join("pairsDevTest.txt"))?;
    files.sort();
    files.dedup();
    Ok(files)
}

fn crop_one(src: &Path, dst: &Path, size: u32, quality: u8) -> anyhow::Result<u64> {
    let img = image::open(src).with_context(|| format!("decoding {}", src.display()))?.to_rgb8();
    let b = CropBox::LFW;
    if b.x + b.width > img.width() || b.y + b.height > img.height() {
        bail!("{}: {}x{} is smaller than the crop box {b:?}", src.display(), img.width(), img.height());
    }
    let crop = image::imageops::crop_imm(&img, b.x, b.y, b.width, b.height).to_image();
    let small = image::imageops::resize(&crop, size, size, image::imageops::FilterType::Triangle);
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, quality).encode_image(&small)?;
    let tmp = dst.with_extension("jpg.tmp");
    std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, dst).with_context(|| format!("renaming to {}", dst.display()))?;
    Ok(bytes.len() as u64)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !(2..=5).contains(&args.len()) {
        bail!("usage: crop_copy <lfw dir> <out dir> [size=112] [jpeg quality=85] [dev_min_images=0]");
    }
    let (src, dst) = (PathBuf::from(&args[0]), PathBuf::from(&args[1]));
    let nums: Vec<u32> = args[2..].iter().map(|a| a.parse().with_context(|| format!("not a number: {a}"))).collect::<Result<_, _>>()?;
    let size = nums.first().copied().unwrap_or(112).max(1);
    let quality = nums.get(1).copied().unwrap_or(85).clamp(1, 100) as u8;
    let dev_min = nums.get(2).copied().unwrap_or(0) as usize;

    std::fs::create_dir_all(&dst).with_context(|| format!("creating {}", dst.display()))?;
    let files = if dev_min > 0 {
        dev_subset(&src, &dst, dev_min)?
    } else {
        for entry in std::fs::read_dir(&src).with_context(|| format!("listing {}", src.display()))? {
            let p = entry?.path();
            if let (Some(name), true) = (p.file_name(), p.extension().is_some_and(|e| e == "txt")) {
                std::fs::copy(&p, dst.join(name)).with_context(|| format!("copying {}", p.display()))?;
            }
        }
        images_under(&src.join(IMAGES_DIR))?
    };
    if files.is_empty() {
        bail!("no images under {}: extract LFW first (cargo xtask download)", src.join(IMAGES_DIR).display());
    }
    let t = std::time::Instant::now();
    let total: u64 = files
        .par_iter()
        .map(|f| {
            let rel = f.strip_prefix(&src).context("image outside the source tree")?;
            let out = dst.join(rel);
            std::fs::create_dir_all(out.parent().unwrap_or(&dst))?;
            crop_one(f, &out, size, quality)
        })
        .sum::<anyhow::Result<u64>>()?;
    println!(
        "{} images cropped to {:?}, resized to {size} px, quality {quality}: {:.1} MB in {:.1} s -> {}",
        files.len(),
        CropBox::LFW,
        total as f64 / 1e6,
        t.elapsed().as_secs_f64(),
        dst.display()
    );
    Ok(())
}
