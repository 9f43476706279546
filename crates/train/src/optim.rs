//! Optimizers with PyTorch semantics: SGD (momentum, weight decay, Nesterov) and AdamW.
//!
//! candle-nn's `SGD` has no momentum or weight decay, which every ArcFace recipe needs
//! (InsightFace `arcface_torch`: SGD lr 0.1, momentum 0.9, wd 5e-4). The update rules follow
//! `torch.optim.SGD` and `torch.optim.AdamW` exactly (dampening 0, `maximize=False`), so that
//! hyper-parameters carry over. Parameters are named `Var`s; the state is exported as named
//! tensors so that a checkpoint restores it bit for bit.

use std::collections::{BTreeMap, HashMap};

use candle::backprop::GradStore;
use candle::{Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// Which optimizer to run and its hyper-parameters (the learning rate comes from the schedule).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// `torch.optim.SGD`: g += wd*p; buf = momentum*buf + g; p -= lr*buf (or lr*(g + momentum*buf) with Nesterov).
    Sgd {
        /// Momentum factor (0 disables the buffer).
        #[serde(default = "default_momentum")]
        momentum: f64,
        /// L2 penalty added to the gradient.
        #[serde(default)]
        weight_decay: f64,
        /// Nesterov momentum.
        #[serde(default)]
        nesterov: bool,
    },
    /// `torch.optim.AdamW`: decoupled weight decay, bias-corrected moments.
    Adamw {
        /// First moment decay.
        #[serde(default = "default_beta1")]
        beta1: f64,
        /// Second moment decay.
        #[serde(default = "default_beta2")]
        beta2: f64,
        /// Denominator epsilon.
        #[serde(default = "default_eps")]
        eps: f64,
        /// Decoupled weight decay (p *= 1 - lr*wd).
        #[serde(default = "default_adamw_wd")]
        weight_decay: f64,
    },
}

impl Default for OptimizerConfig {
    /// SGD with momentum 0.9 and no weight decay.
    fn default() -> Self {
        OptimizerConfig::Sgd { momentum: default_momentum(), weight_decay: 0.0, nesterov: false }
    }
}

impl OptimizerConfig {
    /// The name of the rule: `sgd` or `adamw`.
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerConfig::Sgd { .. } => "sgd",
            OptimizerConfig::Adamw { .. } => "adamw",
        }
    }

    /// The rule named `sgd` or `adamw` with its default hyper-parameters.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sgd" => Some(Self::default()),
            "adamw" => Some(OptimizerConfig::Adamw {
                beta1: default_beta1(),
                beta2: default_beta2(),
                eps: default_eps(),
                weight_decay: default_adamw_wd(),
            }),
            _ => None,
        }
    }

    /// The weight decay, whichever the rule.
    pub fn weight_decay_mut(&mut self) -> &mut f64 {
        match self {
            OptimizerConfig::Sgd { weight_decay, .. } | OptimizerConfig::Adamw { weight_decay, .. } => weight_decay,
        }
    }

    /// Checks the ranges PyTorch accepts; the error names the offending field.
    pub fn validate(&self) -> std::result::Result<(), (&'static str, String)> {
        let unit = |x: f64| (0.0..1.0).contains(&x);
        let decay_ok = |wd: f64| wd.is_finite() && wd >= 0.0;
        match *self {
            OptimizerConfig::Sgd { momentum, .. } if !unit(momentum) => {
                Err(("momentum", format!("must be in [0, 1), got {momentum}")))
            }
            OptimizerConfig::Adamw { beta1, beta2, .. } if !(unit(beta1) && unit(beta2)) => {
                Err(("beta1", format!("betas must be in [0, 1), got {beta1}, {beta2}")))
            }
            OptimizerConfig::Adamw { eps, .. } if !eps.is_finite() || eps <= 0.0 => {
                Err(("eps", format!("must be positive, got {eps}")))
            }
            OptimizerConfig::Sgd { weight_decay, .. } | OptimizerConfig::Adamw { weight_decay, .. }
                if !decay_ok(weight_decay) =>
            {
                Err(("weight_decay", format!("must be >= 0, got {weight_decay}")))
            }
            _ => Ok(()),
        }
    }
}

fn default_momentum() -> f64 {
    0.9
}
fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.999
}
fn default_eps() -> f64 {
    1e-8
}
fn default_adamw_wd() -> f64 {
    1e-2
}

/// A named-parameter optimizer whose state survives checkpoints.
pub struct Optimizer {
    config: OptimizerConfig,
    params: Vec<(String, Var)>,
    /// Per-parameter state tensors: `momentum_buffer` (SGD) or `exp_avg`, `exp_avg_sq` (AdamW).
    state: HashMap<String, BTreeMap<&'static str, Tensor>>,
    steps: u64,
    lr: f64,
}

impl Optimizer {
    /// Creates an optimizer over `params` (sorted by name so the order is deterministic).
    pub fn new(config: OptimizerConfig, mut params: Vec<(String, Var)>, lr: f64) -> Self {
        params.sort_by(|a, b| a.0.cmp(&b.0));
        Self {
            config,
            params,
            state: HashMap::new(),
            steps: 0,
            lr,
        }
    }

    /// The current learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Sets the learning rate for the next steps (called by the schedule).
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// Number of steps taken so far (AdamW's bias-correction counter).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The parameters, sorted by name.
    pub fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    /// Applies one update. Parameters without a gradient are skipped, as in PyTorch.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.steps += 1;
        let lr = self.lr;
        for (name, var) in &self.params {
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            // A leaf gradient from candle still records the ops (and forward tensors) that made
            // it; detach so that momentum/Adam buffers do not keep every step's graph alive.
            let grad = grad.detach().to_dtype(var.dtype())?;
            // Detached: otherwise each new state tensor records the op that made it from the
            // previous one, and the chain keeps every step's buffers alive (an unbounded leak).
            let p = &var.as_tensor().detach();
            let state = self.state.entry(name.clone()).or_default();
            match self.config {
                OptimizerConfig::Sgd {
                    momentum,
                    weight_decay,
                    nesterov,
                } => {
                    if momentum != 0.0 && !nesterov {
                        if let Some(buf) = state.get("momentum_buffer") {
                            if crate::fused_sgd::supports(var.as_tensor(), &grad, buf) {
                                crate::fused_sgd::step(var.as_tensor(), &grad, buf, lr, momentum, weight_decay)?;
                                continue;
                            }
                        }
                    }
                    let mut g = grad;
                    if weight_decay != 0.0 {
                        g = (g + (p * weight_decay)?)?;
                    }
                    if momentum != 0.0 {
                        // torch: the first buffer is a copy of g, which equals momentum*0 + g.
                        let buf = match state.get("momentum_buffer") {
                            Some(b) => ((b * momentum)? + &g)?,
                            None => g.copy()?,
                        };
                        g = if nesterov {
                            (&g + (&buf * momentum)?)?
                        } else {
                            buf.clone()
                        };
                        state.insert("momentum_buffer", buf);
                    }
                    var.set(&(p - (g * lr)?)?)?;
                }
                OptimizerConfig::Adamw {
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                } => {
                    let t = self.steps as i32;
                    let p_decayed = (p * (1.0 - lr * weight_decay))?;
                    let m = match state.get("exp_avg") {
                        Some(m) => ((m * beta1)? + (&grad * (1.0 - beta1))?)?,
                        None => (&grad * (1.0 - beta1))?,
                    };
                    let v = match state.get("exp_avg_sq") {
                        Some(v) => ((v * beta2)? + (grad.sqr()? * (1.0 - beta2))?)?,
                        None => (grad.sqr()? * (1.0 - beta2))?,
                    };
                    let bc1 = 1.0 - beta1.powi(t);
                    let bc2 = 1.0 - beta2.powi(t);
                    let denom = ((v.sqrt()? / bc2.sqrt())? + eps)?;
                    let update = ((&m / denom)? * (lr / bc1))?;
                    var.set(&(p_decayed - update)?)?;
                    state.insert("exp_avg", m);
                    state.insert("exp_avg_sq", v);
                }
            }
        }
        Ok(())
    }

    /// Exports the state as named tensors `optim.<param>.<slot>` (for safetensors). They share
    /// memory with the optimizer's buffers, which the fused CPU SGD step updates in place: save
    /// or copy them before the next step.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (name, slots) in &self.state {
            for (slot, t) in slots {
                out.push((format!("optim.{name}.{slot}"), t.clone()));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Restores state exported by [`Optimizer::state_tensors`], plus the step counter.
    /// Unknown parameter names or wrong shapes are errors (the caller named them in a checkpoint).
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, steps: u64) -> Result<()> {
        let by_name: HashMap<&str, &Var> =
            self.params.iter().map(|(n, v)| (n.as_str(), v)).collect();
        let mut state: HashMap<String, BTreeMap<&'static str, Tensor>> = HashMap::new();
        for (key, t) in tensors {
            let Some(rest) = key.strip_prefix("optim.") else {
                continue;
            };
            let (name, slot) = rest
                .rsplit_once('.')
                .ok_or_else(|| TrainError::OptimizerState(format!("malformed key `{key}`")))?;
            let slot: &'static str = match slot {
                "momentum_buffer" => "momentum_buffer",
                "exp_avg" => "exp_avg",
                "exp_avg_sq" => "exp_avg_sq",
                other => {
                    return Err(TrainError::OptimizerState(format!(
                        "unknown slot `{other}` in `{key}`"
                    )))
                }
            };
            let var = by_name
                .get(name)
                .ok_or_else(|| TrainError::OptimizerState(format!("`{key}` names no parameter")))?;
            if t.dims() != var.dims() {
                return Err(TrainError::OptimizerState(format!(
                    "`{key}` has shape {:?}, parameter has {:?}",
                    t.dims(),
                    var.dims()
                )));
            }
            // A copy: the fused CPU SGD step updates the buffer in place, which must not reach
            // the caller's tensors.
            let t = t.to_device(var.device())?.to_dtype(var.dtype())?.copy()?;
            state.entry(name.to_string()).or_default().insert(slot, t);
        }
        self.state = state;
        self.steps = steps;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::{DType, Device};

    fn quad_step(opt: &mut Optimizer, var: &Var) -> Vec<f32> {
        // loss = 0.5 * sum(p^2) has gradient p, which keeps the hand computation short.
        let loss = (var.as_tensor().sqr().unwrap().sum_all().unwrap() * 0.5).unwrap();
        let grads = loss.backward().unwrap();
        opt.step(&grads).unwrap();
        var.as_tensor().to_vec1::<f32>().unwrap()
    }

    #[test]
    fn sgd_momentum_weight_decay_by_hand() {
        let var = Var::from_slice(&[1.0f32, -2.0], 2, &Device::Cpu).unwrap();
        let cfg = OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 0.1,
            nesterov: false,
        };
        let mut opt = Optimizer::new(cfg, vec![("w".into(), var.clone())], 0.1);
        // step 1: g = p + 0.1p = 1.1p; buf = 1.1p; p = p - 0.11p = 0.89p
        let p1 = quad_step(&mut opt, &var);
        assert!(
            (p1[0] - 0.89).abs() < 1e-6 && (p1[1] + 1.78).abs() < 1e-6,
            "{p1:?}"
        );
        // step 2: g = 1.1*0.89 = 0.979; buf = 0.9*1.1 + 0.979 = 1.969; p = 0.89 - 0.1969 = 0.6931
        let p2 = quad_step(&mut opt, &var);
        // 0.6931 is the hand value above, not ln 2.
        #[allow(clippy::approx_constant)]
        let expect = 0.6931;
        assert!((p2[0] - expect).abs() < 1e-6, "{p2:?}");
        assert!((p2[1] + 1.3862).abs() < 1e-6, "{p2:?}");
    }

    #[test]
    fn sgd_nesterov_by_hand() {
        let var = Var::from_slice(&[1.0f32], 1, &Device::Cpu).unwrap();
        let cfg = OptimizerConfig::Sgd {
            momentum: 0.5,
            weight_decay: 0.0,
            nesterov: true,
        };
        let mut opt = Optimizer::new(cfg, vec![("w".into(), var.clone())], 0.1);
        // step 1: g = 1, buf = 1, d = 1 + 0.5 = 1.5, p = 0.85
        assert!((quad_step(&mut opt, &var)[0] - 0.85).abs() < 1e-6);
        // step 2: g = 0.85, buf = 0.5 + 0.85 = 1.35, d = 0.85 + 0.675 = 1.525, p = 0.6975
        assert!((quad_step(&mut opt, &var)[0] - 0.6975).abs() < 1e-6);
    }

    #[test]
    fn adamw_first_steps_by_hand() {
        let var = Var::from_slice(&[2.0f32], 1, &Device::Cpu).unwrap();
        let cfg = OptimizerConfig::Adamw {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.1,
        };
        let mut opt = Optimizer::new(cfg, vec![("w".into(), var.clone())], 0.01);
        // step 1: p = 2*(1-0.001) = 1.998; m_hat = g, v_hat = g^2 -> update = lr * g/(|g|+eps) ~ 0.01
        let p1 = quad_step(&mut opt, &var)[0] as f64;
        let expect1 = 2.0 * (1.0 - 0.001) - 0.01 * 2.0 / (2.0 + 1e-8);
        assert!((p1 - expect1).abs() < 1e-6, "{p1} vs {expect1}");
        // step 2 with g = p1 (computed in f64 here, independently of the tensor code).
        let g = p1;
        let m = 0.9 * 0.1 * 2.0 + 0.1 * g;
        let v = 0.999 * 0.001 * 4.0 + 0.001 * g * g;
        let (bc1, bc2) = (1.0 - 0.81, 1.0 - 0.999f64.powi(2));
        let expect2 = p1 * (1.0 - 0.001) - 0.01 / bc1 * m / ((v / bc2).sqrt() + 1e-8);
        let p2 = quad_step(&mut opt, &var)[0] as f64;
        assert!((p2 - expect2).abs() < 1e-6, "{p2} vs {expect2}");
    }

    #[test]
    fn state_roundtrip_continues_identically() {
        let cfg = OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 5e-4,
            nesterov: false,
        };
        let a = Var::from_slice(&[0.3f32, -0.7, 1.1], 3, &Device::Cpu).unwrap();
        let mut opt_a = Optimizer::new(cfg.clone(), vec![("w".into(), a.clone())], 0.1);
        quad_step(&mut opt_a, &a);
        let saved: HashMap<String, Tensor> = opt_a.state_tensors().into_iter().collect();
        let b = Var::from_tensor(&a.as_tensor().copy().unwrap()).unwrap();
        let mut opt_b = Optimizer::new(cfg, vec![("w".into(), b.clone())], 0.1);
        opt_b.load_state(&saved, opt_a.steps()).unwrap();
        assert_eq!(quad_step(&mut opt_a, &a), quad_step(&mut opt_b, &b));
    }

    #[test]
    fn load_state_rejects_wrong_shape() {
        let cfg = OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 0.0,
            nesterov: false,
        };
        let a = Var::zeros(3, DType::F32, &Device::Cpu).unwrap();
        let mut opt = Optimizer::new(cfg, vec![("w".into(), a)], 0.1);
        let bad = HashMap::from([(
            "optim.w.momentum_buffer".to_string(),
            Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap(),
        )]);
        let err = opt.load_state(&bad, 1).unwrap_err().to_string();
        assert!(err.contains("shape"), "{err}");
    }
}
