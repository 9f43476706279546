//! Forward precision: `f32`, or `bf16` with f32 master weights.
//!
//! In bf16 mode each step builds the backbone from the master weights cast to bf16 (the cast
//! is differentiable, so gradients land on the f32 `Var`s that the optimizer updates), and the
//! input is cast likewise: convolutions, PReLU and the FC layer compute in bf16 (cuDNN and
//! cuBLAS on CUDA), as PyTorch's autocast does. BatchNorm normalizes in f32 and returns bf16
//! (its buffers and the frozen `features` scale are the f32 master variables themselves, so
//! the running statistics update in place), and the embedding is widened to f32 for the margin
//! head and the loss. candle 0.11 has no bf16 matrix product on the CPU, so there the weights
//! and input are rounded to bf16 and widened back: bf16 numerics with f32 arithmetic (a way to
//! test a bf16 recipe on a laptop, not a speed-up). bf16 is meant for the GPU.

use std::collections::HashMap;

use arcface_backbone::{init::ParamKind, Config, IResNet};
use candle::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, ModuleT, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

/// Named tensors handed out as they are (no dtype conversion), so that bf16 weights and f32
/// BatchNorm buffers can sit in one network.
struct AsIs(HashMap<String, Tensor>);

impl SimpleBackend for AsIs {
    fn get(&self, s: Shape, name: &str, _: Init, dtype: DType, dev: &Device) -> candle::Result<Tensor> {
        let t = self.get_unchecked(name, dtype, dev)?;
        if t.shape() != &s {
            candle::bail!("{name}: expected shape {s:?}, the master variable has {:?}", t.shape())
        }
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle::Result<Tensor> {
        self.0.get(name).cloned().ok_or_else(|| candle::Error::CannotFindTensor { path: name.into() })
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

/// The arithmetic a run trains in, as the config's `[train] precision` names it. f16 is not
/// offered: candle has no f16 loss scaling, and an unscaled f16 step underflows its gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Plain f32.
    #[default]
    F32,
    /// bf16 compute over f32 master weights.
    Bf16,
}

impl Precision {
    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            other => Err(format!("unknown precision `{other}` (expected f32 or bf16)")),
        }
    }
}

/// The backbone as one training step sees it: the f32 model itself, or a bf16 view of it.
pub enum PrecisionView {
    /// Plain f32.
    F32,
    /// bf16 compute over f32 master weights.
    Bf16 {
        /// The backbone shape, to rebuild the per-step network.
        config: Config,
        /// The master variables.
        varmap: VarMap,
        /// The device.
        device: Device,
    },
}

impl PrecisionView {
    /// The view of the model in `varmap` for `precision`.
    pub fn new(
        precision: Precision,
        config: &Config,
        varmap: &VarMap,
        device: &Device,
    ) -> candle::Result<Self> {
        Ok(match precision {
            Precision::Bf16 => PrecisionView::Bf16 {
                config: *config,
                varmap: varmap.clone(),
                device: device.clone(),
            },
            Precision::F32 => PrecisionView::F32,
        })
    }

    /// Training-mode forward of `x` through `model` (f32) or its bf16 view.
    pub fn forward(&self, model: &IResNet, x: &Tensor) -> candle::Result<Tensor> {
        match self {
            PrecisionView::F32 => model.forward_t(x, true),
            PrecisionView::Bf16 {
                config,
                varmap,
                device,
            } => {
                // candle has no bf16 matmul on the CPU: there the values are rounded to bf16
                // and widened back, so the arithmetic is f32 (bf16 numerics, f32 speed).
                let rounded = |t: &Tensor| -> candle::Result<Tensor> {
                    let b = t.to_dtype(DType::BF16)?;
                    if device.is_cpu() { b.to_dtype(DType::F32) } else { Ok(b) }
                };
                let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
                let mut ts = HashMap::with_capacity(data.len());
                for (name, var) in data.iter() {
                    let t = if ParamKind::of(name).is_trainable() {
                        rounded(var.as_tensor())?
                    } else {
                        var.as_tensor().clone()
                    };
                    ts.insert(name.clone(), t);
                }
                drop(data);
                let vb = VarBuilder::from_backend(Box::new(AsIs(ts)), DType::BF16, device.clone());
                let net = IResNet::with_kernels(config, model.kernels(), vb)?;
                net.forward_t(&rounded(x)?, true)?.to_dtype(DType::F32)
            }
        }
    }

    /// Hook after the optimizer step (nothing to copy back: buffers are shared).
    pub fn after_step(&self) -> candle::Result<()> {
        Ok(())
    }
}
