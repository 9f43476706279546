//! Forward precision: `f32`, or `bf16` with f32 master weights.
//!
//! In bf16 mode each step builds the backbone from the master weights cast to bf16 (the cast
//! is differentiable, so gradients land on the f32 `Var`s that the optimizer updates), and the
//! input is cast likewise. arcface-backbone's BatchNorm and fast convolution accept only
//! f32/f64 activations today, so the bf16 values are widened back to f32 before use: the
//! forward sees bf16-rounded weights and inputs, the arithmetic stays f32. BatchNorm buffers
//! and the frozen scale are passed as the master variables themselves, so their running
//! statistics update in place.

use std::collections::HashMap;

use arcface_backbone::{init::ParamKind, Config, IResNet};
use candle::{DType, Device, Tensor};
use candle_nn::{ModuleT, VarBuilder, VarMap};

/// How the backbone's forward pass is computed.
pub enum Precision {
    /// Plain f32.
    F32,
    /// bf16-rounded weights and inputs over f32 masters.
    Bf16 {
        /// The backbone shape, to rebuild the per-step network.
        config: Config,
        /// The master variables.
        varmap: VarMap,
        /// The device.
        device: Device,
    },
}

impl Precision {
    /// Chooses the mode named `f32` or `bf16`.
    pub fn new(
        name: &str,
        config: &Config,
        varmap: &VarMap,
        device: &Device,
    ) -> candle::Result<Self> {
        Ok(match name {
            "bf16" => Precision::Bf16 {
                config: *config,
                varmap: varmap.clone(),
                device: device.clone(),
            },
            _ => Precision::F32,
        })
    }

    /// Training-mode forward of `x` through `model` (f32) or its bf16 view.
    pub fn forward(&self, model: &IResNet, x: &Tensor) -> candle::Result<Tensor> {
        match self {
            Precision::F32 => model.forward_t(x, true),
            Precision::Bf16 {
                config,
                varmap,
                device,
            } => {
                let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
                let mut ts = HashMap::with_capacity(data.len());
                for (name, var) in data.iter() {
                    let t = if ParamKind::of(name).is_trainable() {
                        var.as_tensor()
                            .to_dtype(DType::BF16)?
                            .to_dtype(DType::F32)?
                    } else {
                        var.as_tensor().clone()
                    };
                    ts.insert(name.clone(), t);
                }
                drop(data);
                let net = IResNet::new(config, VarBuilder::from_tensors(ts, DType::F32, device))?;
                net.forward_t(&x.to_dtype(DType::BF16)?.to_dtype(DType::F32)?, true)
            }
        }
    }

    /// Hook after the optimizer step (nothing to copy back: buffers are shared).
    pub fn after_step(&self) -> candle::Result<()> {
        Ok(())
    }
}
