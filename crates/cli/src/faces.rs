//! The face options shared by `detect`, `align`, `verify` and `embed`: where the MTCNN weights
//! are, its detection settings, and (for `verify` / `embed`) how a photo's face is cut.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use arcface_eval::FaceInput;
use arcface_face::{DetectOptions, FaceFinder, Mtcnn};
use clap::{Args, ValueEnum};

/// How `verify` and `embed` cut the face out of a photo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AlignMode {
    /// Detect faces with MTCNN and align the main one (the largest) to the ArcFace template.
    Mtcnn,
    /// The photos are aligned faces already (e.g. InsightFace's 112x112 crops).
    None,
    /// The fixed crop of LFW's 250x250 frames that the center-crop runs were trained on.
    Center,
}

/// MTCNN's location and settings (defaults: facenet-pytorch's).
#[derive(Args, Clone, Debug)]
pub struct DetectorArgs {
    /// Folder holding pnet.pt, rnet.pt and onet.pt (`cargo xtask download mtcnn`).
    #[arg(long, default_value = "data/mtcnn")]
    pub mtcnn: PathBuf,
    /// Smallest face searched for, in pixels.
    #[arg(long, default_value_t = 20.0)]
    pub min_face: f64,
    /// P-Net, R-Net and O-Net face-probability thresholds.
    #[arg(long, num_args = 3, value_delimiter = ',', default_values_t = [0.6, 0.7, 0.7])]
    pub thresholds: Vec<f32>,
    /// Scale step of the image pyramid.
    #[arg(long, default_value_t = 0.709)]
    pub factor: f64,
    /// Photos larger than this (longer side, pixels) are detected on a downscaled copy and
    /// cut from the original.
    #[arg(long, default_value_t = arcface_face::finder::DEFAULT_MAX_DETECT_SIDE, value_parser = clap::value_parser!(u32).range(48..=16384))]
    pub max_detect_side: u32,
}

impl DetectorArgs {
    /// Loads the detector.
    pub fn finder(&self) -> anyhow::Result<FaceFinder> {
        let options = DetectOptions {
            min_face_size: self.min_face,
            thresholds: [self.thresholds[0], self.thresholds[1], self.thresholds[2]],
            factor: self.factor,
        };
        let mtcnn = Mtcnn::load(&self.mtcnn, &candle::Device::Cpu)
            .context("loading the MTCNN face detector")?
            .with_options(options)?;
        Ok(FaceFinder::new(mtcnn).with_max_side(self.max_detect_side))
    }
}

/// How `verify` and `embed` find the face.
#[derive(Args, Clone, Debug)]
pub struct FaceArgs {
    /// mtcnn: detect and align (the default); none: the photos are aligned faces; center:
    /// LFW's fixed crop.
    #[arg(long, value_enum, default_value = "mtcnn")]
    pub align: AlignMode,
    /// In a photo with several faces, use face N (1 = highest detection score; see `detect`)
    /// instead of the largest. Photos with a single face use it.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub face: Option<u32>,
    #[command(flatten)]
    pub detector: DetectorArgs,
}

impl FaceArgs {
    /// The face input these options describe (loading the detector when it is needed).
    pub fn input(&self) -> anyhow::Result<FaceInput> {
        Ok(match self.align {
            AlignMode::Mtcnn => FaceInput::Detect {
                finder: Arc::new(self.detector.finder()?),
                pick: self.face.map(|n| n as usize),
            },
            AlignMode::None => FaceInput::Aligned,
            AlignMode::Center => FaceInput::Center,
        })
    }
}
