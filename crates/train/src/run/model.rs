//! The trained networks: the backbone, the margin head with its class centers, and the names
//! their variables carry in checkpoints (`backbone.*`, `head.*`).

use std::path::Path;

use arcface_backbone::init::ParamKind;
use arcface_backbone::IResNet;
use arcface_loss::{HeadConfig, MarginHead};
use candle::{DType, Device, Tensor, Var};
use candle_nn::VarMap;

use crate::config::TrainConfig;
use crate::error::Result;

/// The backbone and the head, with their variables sorted by name.
pub(super) struct Nets {
    /// The backbone's variables (saved as `model.safetensors`).
    pub(super) bb_vm: VarMap,
    /// The backbone.
    pub(super) model: IResNet,
    /// The margin head.
    pub(super) head: MarginHead,
    /// The backbone's variables, buffers included.
    pub(super) bb_vars: Vec<(String, Var)>,
    /// The head's variables.
    pub(super) head_vars: Vec<(String, Var)>,
}

impl Nets {
    /// Initializes both networks from the config's seed (the head from a derived seed).
    pub(super) fn init(
        config: &TrainConfig,
        bb_cfg: &arcface_backbone::Config,
        kernels: &arcface_backbone::KernelOptions,
        num_classes: usize,
        device: &Device,
    ) -> Result<Self> {
        let bb_vm = VarMap::new();
        let model = arcface_backbone::init_varmap_with(bb_cfg, kernels, &bb_vm, device, config.seed)?;
        let head_cfg = head_config(config, num_classes, bb_cfg.num_features);
        let head_vm = VarMap::new();
        let head = MarginHead::init_varmap(
            &head_cfg,
            &head_vm,
            "",
            DType::F32,
            device,
            config.seed ^ 0x4ead,
        )?;
        let bb_vars = named_vars(&bb_vm);
        let head_vars = named_vars(&head_vm);
        Ok(Self {
            bb_vm,
            model,
            head,
            bb_vars,
            head_vars,
        })
    }

    /// The variables the optimizer updates (the backbone's buffers excluded), under their
    /// checkpoint names.
    pub(super) fn trainable(&self) -> Vec<(String, Var)> {
        self.bb_vars
            .iter()
            .filter(|(n, _)| ParamKind::of(n).is_trainable())
            .map(|(n, v)| (format!("backbone.{n}"), v.clone()))
            .chain(
                self.head_vars
                    .iter()
                    .map(|(n, v)| (format!("head.{n}"), v.clone())),
            )
            .collect()
    }

    /// Every variable's current value under its checkpoint name.
    pub(super) fn tensors(&self) -> Vec<(String, Tensor)> {
        self.bb_vars
            .iter()
            .map(|(n, v)| (format!("backbone.{n}"), v.as_tensor().clone()))
            .chain(
                self.head_vars
                    .iter()
                    .map(|(n, v)| (format!("head.{n}"), v.as_tensor().clone())),
            )
            .collect()
    }
}

/// The margin head a config trains with, for `num_classes` identities and `embedding_size`-d
/// embeddings.
pub fn head_config(config: &TrainConfig, num_classes: usize, embedding_size: usize) -> HeadConfig {
    HeadConfig {
        num_classes,
        embedding_size,
        scale: config.loss.scale,
        margin: config.loss.margin,
        grad_mode: config.loss.grad_mode,
        sub_centers: config.loss.sub_centers,
        label_smoothing: config.loss.label_smoothing,
    }
}

fn named_vars(vm: &VarMap) -> Vec<(String, Var)> {
    let data = vm.data().lock().unwrap_or_else(|e| e.into_inner());
    let mut v: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Writes the backbone's weights to `path` (atomically: `save_weights` renames a temporary).
pub(super) fn save_backbone(vm: &VarMap, path: &Path) -> Result<()> {
    Ok(arcface_backbone::save_weights(vm, path)?)
}
