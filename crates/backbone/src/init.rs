//! InsightFace's initialisation of a fresh IResNet, drawn from a seeded ChaCha stream so that
//! a run is reproducible (candle's CPU RNG cannot be seeded), and the choice of which
//! variables an optimizer may update.
//!
//! Reference: InsightFace `iresnet.py` `IResNet.__init__`: conv weights ~ N(0, 0.1);
//! BatchNorm2d weight 1, bias 0; `features` BatchNorm1d weight constant 1 (no gradient),
//! bias 0; PReLU 0.25 (PyTorch default); FC PyTorch's `nn.Linear` default, i.e. weight and
//! bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)); running mean 0, running variance 1;
//! `zero_init_residual` off.

use candle::{DType, Device, Result, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use arcface_kernels::KernelOptions;

use crate::config::Config;
use crate::iresnet::IResNet;

/// What role a backbone tensor plays, decided from its InsightFace key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// Convolution kernel (`conv*.weight`, `downsample.0.weight`).
    Conv,
    /// FC weight or bias (`fc.*`).
    Linear,
    /// BatchNorm scale.
    BnWeight,
    /// BatchNorm scale frozen at 1 (`features.weight`): stored, never trained.
    FrozenBnWeight,
    /// BatchNorm shift.
    BnBias,
    /// BatchNorm running mean, running variance or batch counter: buffers, never trained.
    Buffer,
    /// PReLU slope.
    PRelu,
}

impl ParamKind {
    /// Classifies a key such as `layer1.0.bn2.weight` (a leading prefix is allowed).
    pub fn of(name: &str) -> Self {
        let parts: Vec<&str> = name.split('.').collect();
        let last = parts.last().copied().unwrap_or("");
        let parent = if parts.len() >= 2 { parts[parts.len() - 2] } else { "" };
        match last {
            "running_mean" | "running_var" | "num_batches_tracked" => Self::Buffer,
            _ if parent == "fc" => Self::Linear,
            _ if parent == "prelu" => Self::PRelu,
            _ if parent.starts_with("conv") || (parent == "0" && name.contains("downsample")) => Self::Conv,
            "weight" if parent == "features" => Self::FrozenBnWeight,
            "weight" => Self::BnWeight,
            _ => Self::BnBias,
        }
    }

    /// Whether an optimizer should update this tensor.
    pub fn is_trainable(self) -> bool {
        !matches!(self, Self::Buffer | Self::FrozenBnWeight)
    }
}

/// Vars an optimizer should update: everything in `varmap` except BatchNorm running
/// statistics and the frozen `features.weight`. Pass this, not `varmap.all_vars()`, to the
/// optimizer: weight decay would otherwise shrink the running statistics.
pub fn trainable_vars(varmap: &VarMap) -> Vec<Var> {
    let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    let mut named: Vec<(&String, &Var)> =
        data.iter().filter(|(k, _)| ParamKind::of(k).is_trainable()).collect();
    // Stable order so optimizer state lines up across runs.
    named.sort_by(|a, b| a.0.cmp(b.0));
    named.into_iter().map(|(_, v)| v.clone()).collect()
}

fn normal(rng: &mut ChaCha8Rng, std: f64) -> f32 {
    // Box-Muller; 1 - u keeps the log argument in (0, 1].
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen::<f64>();
    (std * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// Initial values of one tensor; `fc_in` is the FC fan-in, which also bounds its bias.
fn init_values(name: &str, dims: &[usize], fc_in: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let n: usize = dims.iter().product();
    match ParamKind::of(name) {
        ParamKind::Conv => (0..n).map(|_| normal(rng, 0.1)).collect(),
        ParamKind::Linear => {
            let bound = 1.0 / (fc_in as f64).sqrt();
            (0..n).map(|_| rng.gen_range(-bound..bound) as f32).collect()
        }
        ParamKind::BnWeight | ParamKind::FrozenBnWeight => vec![1.0; n],
        ParamKind::PRelu => vec![0.25; n],
        ParamKind::Buffer if name.ends_with("running_var") => vec![1.0; n],
        ParamKind::Buffer | ParamKind::BnBias => vec![0.0; n],
    }
}

/// Creates a freshly initialised IResNet whose variables live in `varmap` under
/// InsightFace's keys (existing entries of the same names are replaced). The same `seed`
/// gives the same weights on every device.
/// The layers run on the default kernels.
pub fn init_varmap(config: &Config, varmap: &VarMap, device: &Device, seed: u64) -> Result<IResNet> {
    init_varmap_with(config, &KernelOptions::default(), varmap, device, seed)
}

/// As [`init_varmap`], with the layers on the kernels `kernels` chooses (the weights do not
/// depend on it).
pub fn init_varmap_with(
    config: &Config,
    kernels: &KernelOptions,
    varmap: &VarMap,
    device: &Device,
    seed: u64,
) -> Result<IResNet> {
    let fresh = VarMap::new();
    let model = IResNet::with_kernels(config, kernels, VarBuilder::from_varmap(&fresh, DType::F32, device))?;
    let fresh_data = fresh.data().lock().unwrap_or_else(|e| e.into_inner());
    let mut names: Vec<&String> = fresh_data.keys().collect();
    names.sort();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut target = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    for name in names {
        let var = &fresh_data[name];
        let dims = var.dims().to_vec();
        let values = init_values(name, &dims, config.fc_in(), &mut rng);
        var.set(&Tensor::from_vec(values, dims.as_slice(), device)?)?;
        target.insert(name.clone(), var.clone());
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_insightface_keys() {
        assert_eq!(ParamKind::of("conv1.weight"), ParamKind::Conv);
        assert_eq!(ParamKind::of("layer2.0.conv2.weight"), ParamKind::Conv);
        assert_eq!(ParamKind::of("layer2.0.downsample.0.weight"), ParamKind::Conv);
        assert_eq!(ParamKind::of("layer2.0.downsample.1.weight"), ParamKind::BnWeight);
        assert_eq!(ParamKind::of("layer2.0.downsample.1.running_var"), ParamKind::Buffer);
        assert_eq!(ParamKind::of("bn2.bias"), ParamKind::BnBias);
        assert_eq!(ParamKind::of("prelu.weight"), ParamKind::PRelu);
        assert_eq!(ParamKind::of("layer1.0.prelu.weight"), ParamKind::PRelu);
        assert_eq!(ParamKind::of("fc.bias"), ParamKind::Linear);
        assert_eq!(ParamKind::of("features.weight"), ParamKind::FrozenBnWeight);
        assert_eq!(ParamKind::of("features.bias"), ParamKind::BnBias);
        assert_eq!(ParamKind::of("bn1.num_batches_tracked"), ParamKind::Buffer);
    }
}
