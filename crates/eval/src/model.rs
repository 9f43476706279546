//! Loading a trained model for inference: from a run folder (`model.json` with the backbone
//! config and preprocessing, `model.safetensors` with InsightFace key names) or from a bare
//! weight file (`.safetensors` or InsightFace `backbone.pth`) plus a backbone preset name,
//! which gets the default LFW preprocessing.

use std::path::PathBuf;

use arcface_backbone::{Config, IResNet};
use candle::Device;
use candle_nn::VarMap;

use crate::error::{Error, Result};
use crate::run_dir::{ModelInfo, RunDir};

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSource {
    /// A run folder with `model.json` and `model.safetensors`.
    Run(PathBuf),
    /// A weight file (`.safetensors` or InsightFace `.pth`) and a backbone name (`r50`).
    Weights {
        /// The weight file.
        path: PathBuf,
        /// Backbone preset name.
        backbone: String,
    },
}

impl ModelSource {
    /// Fails, naming it, when the run folder or weight file does not exist: checked before
    /// slower set-up (the face detector) so the message is about the real problem.
    pub fn check_exists(&self) -> crate::Result<()> {
        match self {
            ModelSource::Run(dir) if !dir.is_dir() => Err(crate::Error::format(dir, "no such run folder")),
            ModelSource::Weights { path, .. } if !path.is_file() => Err(crate::Error::format(path, "no such weight file")),
            _ => Ok(()),
        }
    }
}

/// A model ready for inference.
pub struct LoadedModel {
    /// The network, frozen for inference ([`IResNet::frozen`]: BatchNorms folded into the
    /// convolutions, Winograd kernels on the CPU); use `forward_t(x, false)`.
    pub net: IResNet,
    /// Its variables.
    pub varmap: VarMap,
    /// Shape, preprocessing and training facts.
    pub info: ModelInfo,
    /// The run folder, when loaded from one.
    pub run_dir: Option<PathBuf>,
    /// The device the weights live on.
    pub device: Device,
}

/// Loads a model on `device`.
pub fn load_model(source: &ModelSource, device: &Device) -> Result<LoadedModel> {
    load_model_with(source, device, &arcface_backbone::KernelOptions::default())
}

/// As [`load_model`], with the backbone on the kernels `kernels` chooses.
pub fn load_model_with(
    source: &ModelSource,
    device: &Device,
    kernels: &arcface_backbone::KernelOptions,
) -> Result<LoadedModel> {
    let (info, weights, run_dir) = match source {
        ModelSource::Run(dir) => {
            let run = RunDir::new(dir);
            let info = run.model_info()?;
            let weights = run.final_weights_path();
            if !weights.is_file() {
                return Err(Error::format(
                    &weights,
                    "missing: the run has no final weights (did training finish?)",
                ));
            }
            (info, weights, Some(dir.clone()))
        }
        ModelSource::Weights { path, backbone } => {
            let config = Config::from_name(backbone).ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown backbone {backbone:?} (expected r18, r34, r50 or r100)"
                ))
            })?;
            (ModelInfo::bare(config), path.clone(), None)
        }
    };
    let (net, varmap) = arcface_backbone::load_model_with(&info.backbone, kernels, &weights, device)?;
    Ok(LoadedModel {
        net: net.frozen()?,
        varmap,
        info,
        run_dir,
        device: device.clone(),
    })
}
