//! `arcface preview`: a PNG grid of preprocessed training crops, to check the crop by eye.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use arcface_data::{preview_grid, CropBox, Lfw, Preprocess, Protocol};
use clap::Args;

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
    preview_grid(&picked, &pre, a.cols, &a.out)?;
    println!("wrote {} crops ({}, {:?}, {} px) to {}", picked.len(), pre.align, pre.crop, pre.size, a.out.display());
    Ok(ExitCode::SUCCESS)
}
