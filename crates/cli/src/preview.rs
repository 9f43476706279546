//! `arcface preview`: a PNG grid of preprocessed training crops, to check the crop by eye;
//! with `--augment CONFIG`, a few of them as the training loader augments them, epoch after
//! epoch, to check the `[augment]` table by eye.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use arcface_data::{preview_grid, CropBox, Lfw, Preprocess, Protocol};
use arcface_train::TrainConfig;
use clap::Args;
use image::RgbImage;

/// Arguments of `preview`.
#[derive(Args)]
pub struct PreviewArgs {
    /// LFW folder (holding `lfw-deepfunneled/` and the protocol files).
    #[arg(long, default_value = arcface_data::lfw::DEFAULT_LFW_DIR)]
    pub lfw: PathBuf,
    /// Number of crops (taken evenly across the dev training images).
    #[arg(long, default_value_t = 64)]
    pub count: usize,
    /// Columns of the grid.
    #[arg(long, default_value_t = 8)]
    pub cols: usize,
    /// Crop box `x,y,width,height` in the 250x250 image (default: the tuned LFW crop).
    #[arg(long, value_parser = parse_crop)]
    pub crop: Option<CropBox>,
    /// Output side in pixels.
    #[arg(long, default_value_t = 112)]
    pub size: usize,
    /// Output PNG.
    #[arg(long, default_value = "runs/preview.png")]
    pub out: PathBuf,
    /// center: the crop box; mtcnn: detected and aligned faces, as `[data] align = "mtcnn"`.
    #[arg(long, default_value = "center", value_parser = parse_align)]
    pub align: arcface_data::Align,
    /// Folder of the MTCNN weights, for `--align mtcnn`.
    #[arg(long, default_value = "data/mtcnn")]
    pub mtcnn: PathBuf,
    /// Show training augmentation: a preset or TOML file whose `[augment]` table, `[data] flip`
    /// and seed are applied. Each row is one photo (count / cols of them): as cached first,
    /// then as epochs 0, 1, ... augment it (the image index is its place in the dev training
    /// list).
    #[arg(long, value_name = "CONFIG")]
    pub augment: Option<String>,
}

fn parse_align(s: &str) -> Result<arcface_data::Align, String> {
    match s {
        "center" => Ok(arcface_data::Align::Center),
        "mtcnn" => Ok(arcface_data::Align::Mtcnn),
        _ => Err(format!("`{s}`: expected center or mtcnn")),
    }
}

fn parse_crop(s: &str) -> Result<CropBox, String> {
    let v: Vec<u32> = s
        .split(',')
        .map(|p| p.trim().parse::<u32>().map_err(|e| format!("`{p}`: {e}")))
        .collect::<Result<_, _>>()?;
    match v[..] {
        [x, y, width, height] => Ok(CropBox { x, y, width, height }),
        _ => Err(format!("expected x,y,width,height, got `{s}`")),
    }
}

pub fn run(a: PreviewArgs) -> anyhow::Result<ExitCode> {
    let lfw = Lfw::open(&a.lfw).with_context(|| format!("opening LFW at {}", a.lfw.display()))?;
    let split = lfw.split(&Protocol::Dev)?;
    let paths = &split.train.paths;
    let step = (paths.len() / a.count.max(1)).max(1);
    let picked: Vec<_> = paths.iter().step_by(step).take(a.count).cloned().collect();
    let pre = Preprocess { crop: a.crop.unwrap_or(CropBox::LFW), size: a.size, align: a.align };
    if a.align == arcface_data::Align::Mtcnn {
        arcface_data::faces::load_detector(&a.mtcnn)?;
    }
    if let Some(parent) = a.out.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    if let Some(spec) = &a.augment {
        anyhow::ensure!(a.cols >= 2, "--augment needs at least 2 columns (the crop, then epochs)");
        let config = TrainConfig::from_spec(spec)?;
        let rows = (a.count / a.cols).clamp(1, picked.len().max(1));
        let tiles = augmented_rows(&picked[..rows.min(picked.len())], &pre, &config, step, a.cols)?;
        save_grid(&tiles, pre.size, a.cols, &a.out)?;
        println!("wrote {rows} photos x {} epochs of `{spec}`'s augmentation to {}", a.cols - 1, a.out.display());
        return Ok(ExitCode::SUCCESS);
    }
    preview_grid(&picked, &pre, a.cols, &a.out)?;
    println!("wrote {} crops ({}, {:?}, {} px) to {}", picked.len(), pre.align, pre.crop, pre.size, a.out.display());
    Ok(ExitCode::SUCCESS)
}

/// For each photo, the cached crop then `cols - 1` epochs of its augmentation, as the loader
/// makes them (the same plan for the same seed, epoch and index). `step` maps a photo's row to
/// its index in the training list.
fn augmented_rows(
    photos: &[PathBuf],
    pre: &Preprocess,
    config: &TrainConfig,
    step: usize,
    cols: usize,
) -> anyhow::Result<Vec<Vec<u8>>> {
    let s = pre.size;
    let mut tiles = Vec::new();
    for (row, path) in photos.iter().enumerate() {
        let face = pre.load(path)?;
        let index = (row * step) as u64;
        let epochs: Vec<Vec<u8>> = (0..cols as u64 - 1)
            .map(|epoch| config.augment.plan(config.data.flip, config.seed, epoch, index, s, s).apply(&face, s, s))
            .collect();
        tiles.push(face);
        tiles.extend(epochs);
    }
    Ok(tiles)
}

/// Saves `size x size` RGB tiles as a PNG grid, `cols` per row, with 2-pixel white gaps.
fn save_grid(tiles: &[Vec<u8>], size: usize, cols: usize, out: &std::path::Path) -> anyhow::Result<()> {
    let (s, gap) = (size as u32, 2u32);
    let rows = tiles.len().div_ceil(cols) as u32;
    let (width, height) = (cols as u64 * (size as u64 + 2) + 2, rows as u64 * (size as u64 + 2) + 2);
    // The image crate aborts the process when it cannot allocate; refuse first.
    anyhow::ensure!(width * height <= 1 << 28, "a {width}x{height} grid is too large (fewer photos or columns)");
    let mut grid = RgbImage::from_pixel(width as u32, height as u32, image::Rgb([255, 255, 255]));
    for (i, px) in tiles.iter().enumerate() {
        let tile = RgbImage::from_raw(s, s, px.clone()).context("tile of the wrong size")?;
        let (col, row) = (i as u32 % cols as u32, i as u32 / cols as u32);
        image::imageops::replace(&mut grid, &tile, (gap + col * (s + gap)) as i64, (gap + row * (s + gap)) as i64);
    }
    grid.save(out).with_context(|| format!("writing {}", out.display()))
}
