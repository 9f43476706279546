//! What the typed sections of a [`TrainConfig`] mean to the other crates: the backbone shape,
//! the margin, the optimizer settings and the decay of the learning-rate schedule.

use super::TrainConfig;
use crate::optim::OptimizerConfig;
use crate::schedule::Decay;

impl TrainConfig {
    /// The backbone shape, or why it is invalid.
    pub fn backbone_config(&self) -> std::result::Result<arcface_backbone::Config, String> {
        let m = &self.model;
        let base = arcface_backbone::Config::from_name(&m.backbone).ok_or_else(|| {
            format!(
                "unknown backbone {:?} (expected r18, r34, r50 or r100)",
                m.backbone
            )
        })?;
        let cfg = arcface_backbone::Config {
            width: m.width,
            input_size: m.input_size,
            num_features: m.num_features,
            dropout: m.dropout,
            ..base
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The margin parameter of single-margin losses, with its default.
    pub fn margin_value(&self) -> f64 {
        self.loss.m.unwrap_or(match self.loss.kind.as_str() {
            "cosface" => 0.35,
            "sphereface" => 1.7,
            _ => 0.5,
        })
    }

    /// The optimizer settings.
    pub fn optimizer_config(&self) -> OptimizerConfig {
        let o = &self.optim;
        if o.kind == "adamw" {
            OptimizerConfig::Adamw {
                beta1: o.betas[0],
                beta2: o.betas[1],
                eps: o.eps,
                weight_decay: o.weight_decay,
            }
        } else {
            OptimizerConfig::Sgd {
                momentum: o.momentum,
                weight_decay: o.weight_decay,
                nesterov: o.nesterov,
            }
        }
    }

    /// The decay that follows warm-up.
    pub fn decay(&self) -> Decay {
        let s = &self.schedule;
        match s.kind.as_str() {
            "cosine" => Decay::Cosine { min_lr: s.min_lr },
            "step" => Decay::Step {
                milestones: s.milestones.clone(),
                gamma: s.gamma,
            },
            "constant" => Decay::Constant,
            _ => Decay::Poly { power: s.power },
        }
    }
}
