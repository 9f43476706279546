//! Learning-rate schedules: linear warm-up per step, then poly, cosine, step decay or constant.
//!
//! Poly follows InsightFace `arcface_torch/lr_scheduler.py` (`PolyScheduler`): during warm-up
//! `lr = base * step / warmup_steps`, afterwards
//! `lr = base * (1 - (step - warmup) / (total - warmup))^power` (power 2 there). `step` is the
//! 0-based optimizer step about to be taken, as `last_epoch` is in PyTorch's schedulers.
//! Cosine is `torch.optim.lr_scheduler.CosineAnnealingLR` after warm-up; step decay multiplies
//! by `gamma` at each milestone epoch, as `MultiStepLR`.

use serde::{Deserialize, Serialize};

/// The decay that follows the warm-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Decay {
    /// `base * (1 - progress)^power` (InsightFace: power 2).
    Poly {
        /// The exponent.
        #[serde(default = "default_power")]
        power: f64,
    },
    /// `min_lr + (base - min_lr) * (1 + cos(pi * progress)) / 2`.
    Cosine {
        /// The floor reached at the last step.
        #[serde(default)]
        min_lr: f64,
    },
    /// `base * gamma^(milestones passed)`, milestones in epochs.
    Step {
        /// Epochs (0-based, counted from the start) at which the rate is multiplied by `gamma`.
        #[serde(default)]
        milestones: Vec<usize>,
        /// Factor applied at each milestone.
        #[serde(default = "default_gamma")]
        gamma: f64,
    },
    /// The base rate throughout.
    Constant,
}

impl Default for Decay {
    /// InsightFace's poly decay, power 2.
    fn default() -> Self {
        Decay::Poly { power: default_power() }
    }
}

impl Decay {
    /// The decay named `poly`, `cosine`, `step` or `constant` with its default parameters
    /// (`step` starts with no milestones: a constant rate until some are given).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "poly" => Decay::default(),
            "cosine" => Decay::Cosine { min_lr: 0.0 },
            "step" => Decay::Step { milestones: vec![], gamma: default_gamma() },
            "constant" => Decay::Constant,
            _ => return None,
        })
    }

    /// Checks the parameters; the error names the offending field.
    pub fn validate(&self) -> std::result::Result<(), (&'static str, String)> {
        match self {
            Decay::Poly { power } if !(*power > 0.0 && power.is_finite()) => {
                Err(("power", format!("must be positive, got {power}")))
            }
            Decay::Cosine { min_lr } if !(min_lr.is_finite() && *min_lr >= 0.0) => {
                Err(("min_lr", format!("must be >= 0, got {min_lr}")))
            }
            Decay::Step { gamma, .. } if !(*gamma > 0.0 && *gamma <= 1.0) => {
                Err(("gamma", format!("must be in (0, 1], got {gamma}")))
            }
            Decay::Step { milestones, .. } if milestones.windows(2).any(|w| w[0] >= w[1]) => {
                Err(("milestones", format!("must increase strictly, got {milestones:?}")))
            }
            _ => Ok(()),
        }
    }
}

fn default_power() -> f64 {
    2.0
}
fn default_gamma() -> f64 {
    0.1
}

/// A schedule resolved against the run's length.
#[derive(Debug, Clone, PartialEq)]
pub struct LrSchedule {
    /// Peak learning rate.
    pub base_lr: f64,
    /// Warm-up length in steps.
    pub warmup_steps: u64,
    /// Total number of steps of the run.
    pub total_steps: u64,
    /// Steps per epoch (for milestones in epochs).
    pub steps_per_epoch: u64,
    /// The decay after warm-up.
    pub decay: Decay,
}

impl LrSchedule {
    /// The learning rate for 0-based optimizer step `step`.
    pub fn lr(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.base_lr * step as f64 / self.warmup_steps as f64;
        }
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
        let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
        match &self.decay {
            Decay::Poly { power } => self.base_lr * (1.0 - progress).powf(*power),
            Decay::Cosine { min_lr } => {
                min_lr
                    + (self.base_lr - min_lr) * (1.0 + (std::f64::consts::PI * progress).cos())
                        / 2.0
            }
            Decay::Step { milestones, gamma } => {
                let epoch = (step / self.steps_per_epoch.max(1)) as usize;
                let passed = milestones.iter().filter(|&&m| m <= epoch).count();
                self.base_lr * gamma.powi(passed as i32)
            }
            Decay::Constant => self.base_lr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(decay: Decay) -> LrSchedule {
        LrSchedule {
            base_lr: 0.1,
            warmup_steps: 4,
            total_steps: 14,
            steps_per_epoch: 2,
            decay,
        }
    }

    #[test]
    fn warmup_is_linear_from_zero() {
        let s = sched(Decay::Constant);
        let lrs: Vec<f64> = (0..5).map(|i| s.lr(i)).collect();
        for (got, want) in lrs.iter().zip([0.0, 0.025, 0.05, 0.075, 0.1]) {
            assert!((got - want).abs() < 1e-12, "{lrs:?}");
        }
    }

    #[test]
    fn poly_power_two_by_hand() {
        let s = sched(Decay::Poly { power: 2.0 });
        // step 9: progress (9-4)/10 = 0.5 -> 0.1 * 0.25
        assert!((s.lr(9) - 0.025).abs() < 1e-12);
        // step 6: progress 0.2 -> 0.1 * 0.64
        assert!((s.lr(6) - 0.064).abs() < 1e-12);
        assert!(s.lr(14).abs() < 1e-12);
    }

    #[test]
    fn cosine_by_hand() {
        let s = sched(Decay::Cosine { min_lr: 0.0 });
        assert!((s.lr(4) - 0.1).abs() < 1e-12);
        assert!((s.lr(9) - 0.05).abs() < 1e-12);
        // step 6: progress (6-4)/10 = 0.2 -> 0.1 * (1 + cos(pi/5))/2 = 0.1 * (1 + 0.809017)/2
        assert!((s.lr(6) - 0.0904508).abs() < 1e-7, "{}", s.lr(6));
    }

    #[test]
    fn step_decay_counts_milestones_in_epochs() {
        let s = sched(Decay::Step {
            milestones: vec![3, 5],
            gamma: 0.1,
        });
        assert!((s.lr(5) - 0.1).abs() < 1e-12); // epoch 2
        assert!((s.lr(6) - 0.01).abs() < 1e-12); // epoch 3
        assert!((s.lr(10) - 0.001).abs() < 1e-12); // epoch 5
    }
}
