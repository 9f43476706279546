//! Batch normalization layer with PyTorch's training semantics (batch statistics, biased
//! variance for normalizing, unbiased variance for the running estimate, momentum 0.1) and an
//! optionally frozen scale, as InsightFace's `features` BatchNorm1d needs.
//!
//! Reference: Ioffe & Szegedy, "Batch Normalization", 2015; `torch.nn.BatchNorm2d`.
//! candle-nn's `BatchNorm` is not used because its scale is always a trainable tensor and
//! its training path transposes the whole activation to make it contiguous. The layer owns
//! the tensors; the arithmetic (fused CPU kernels, closed-form backward off the CPU, the
//! reference on candle ops) is [`arcface_kernels::batch_norm`].

use arcface_kernels::batch_norm::{BatchNormParams, BatchNormPath};
use arcface_kernels::profile::timed;
use arcface_kernels::KernelOptions;
use candle::{Result, Tensor, Var};
use candle_nn::{Init, ModuleT, VarBuilder};

pub use arcface_kernels::batch_norm::{BN_EPS, BN_MOMENTUM};

/// BatchNorm over dim 1 of an `N x C` or `N x C x H x W` tensor.
#[derive(Debug, Clone)]
pub struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Var,
    running_var: Var,
    eps: f64,
    momentum: f64,
    kernels: KernelOptions,
    /// In a frozen copy: the eval-mode `(scale, shift)`, computed once.
    frozen_affine: Option<(Tensor, Tensor)>,
}

impl BatchNorm {
    /// Loads `weight`, `bias`, `running_mean`, `running_var` of `channels` elements.
    /// With `frozen_weight`, the scale is detached so that it never receives a gradient.
    pub fn new(channels: usize, frozen_weight: bool, kernels: &KernelOptions, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints(channels, "weight", Init::Const(1.0))?;
        let weight = if frozen_weight { weight.detach() } else { weight };
        let bias = vb.get_with_hints(channels, "bias", Init::Const(0.0))?;
        // `Var::from_tensor` keeps a VarMap's variable (same storage), so updating the
        // running statistics here updates what `save_weights` writes.
        let running_mean = Var::from_tensor(&vb.get_with_hints(channels, "running_mean", Init::Const(0.0))?)?;
        let running_var = Var::from_tensor(&vb.get_with_hints(channels, "running_var", Init::Const(1.0))?)?;
        Ok(Self {
            weight,
            bias,
            running_mean,
            running_var,
            eps: BN_EPS,
            momentum: BN_MOMENTUM,
            kernels: kernels.clone(),
            frozen_affine: None,
        })
    }

    /// A copy whose tensors are copied now: later changes to this layer's variables (an
    /// optimizer step, a load) do not reach it; its eval-mode forward is one per-channel
    /// affine computed once ([`arcface_kernels::eval_ops::channel_affine`]). For
    /// [`crate::IResNet::frozen`].
    pub fn frozen(&self) -> Result<Self> {
        Ok(Self {
            weight: self.weight.detach().copy()?,
            bias: self.bias.detach().copy()?,
            running_mean: Var::from_tensor(&self.running_mean.as_detached_tensor().copy()?)?,
            running_var: Var::from_tensor(&self.running_var.as_detached_tensor().copy()?)?,
            frozen_affine: Some(self.eval_affine()?),
            ..self.clone()
        })
    }

    /// The eval-mode transform as `x * scale + shift` per channel: `scale = weight /
    /// sqrt(running_var + eps)`, `shift = bias - running_mean * scale` (f32, detached), to fold
    /// into the convolution before it ([`crate::IResNet::frozen`]).
    pub fn eval_affine(&self) -> Result<(Tensor, Tensor)> {
        let f32 = |t: &Tensor| t.detach().to_dtype(candle::DType::F32);
        let inv_std = (f32(self.running_var.as_tensor())? + self.eps)?.sqrt()?.recip()?;
        let scale = (f32(&self.weight)? * inv_std)?;
        let shift = (f32(&self.bias)? - (f32(self.running_mean.as_tensor())? * &scale)?)?;
        Ok((scale, shift))
    }

    /// The running mean (a buffer, not a parameter).
    pub fn running_mean(&self) -> &Tensor {
        self.running_mean.as_tensor()
    }

    /// The running (unbiased) variance.
    pub fn running_var(&self) -> &Tensor {
        self.running_var.as_tensor()
    }

    /// Forward through candle's generic ops only, never the fused kernels: the reference
    /// that the fused path is tested against. Same dtypes and side effects (running
    /// statistics in training) as [`ModuleT::forward_t`].
    pub fn forward_reference(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.params().forward(x, train, BatchNormPath::Reference, &self.kernels)
    }

    fn params(&self) -> BatchNormParams<'_> {
        BatchNormParams {
            weight: &self.weight,
            bias: &self.bias,
            running_mean: &self.running_mean,
            running_var: &self.running_var,
            eps: self.eps,
            momentum: self.momentum,
        }
    }
}

impl ModuleT for BatchNorm {
    /// Batch statistics when `train` (fused kernels on CPU f32, closed-form backward on
    /// other devices), running statistics otherwise. f32 and f64 inputs are computed in their
    /// dtype, bf16 and f16 in f32.
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        timed(self.kernels.profiler(), "batch-norm", x.device(), || match &self.frozen_affine {
            Some((scale, shift)) if !train => arcface_kernels::eval_ops::channel_affine(x, scale, shift),
            _ => self.params().forward(x, train, BatchNormPath::Auto, &self.kernels),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::DType;
    use candle::Device;
    use candle_nn::VarMap;

    // Expected values computed by hand for channel 0 = [1, 3, 5, 7] (N=2, H*W=2) and
    // channel 1 = [0, 0, 2, 2]: mean 4 and 1, biased var 5 and 1, unbiased 20/3 and 4/3.
    #[test]
    fn train_mode_matches_hand_values() -> Result<()> {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let bn = BatchNorm::new(2, false, &KernelOptions::default(), vb)?;
        let x = Tensor::new(&[[[1f32, 3.], [0., 0.]], [[5., 7.], [2., 2.]]], &dev)?;
        let y = bn.forward_t(&x, true)?;
        let s5 = (5f32 + 1e-5).sqrt();
        let s1 = (1f32 + 1e-5).sqrt();
        let want = [[[-3. / s5, -1. / s5], [-1. / s1, -1. / s1]], [[1. / s5, 3. / s5], [1. / s1, 1. / s1]]];
        let got = y.to_vec3::<f32>()?;
        for (g, w) in got.iter().flatten().flatten().zip(want.iter().flatten().flatten()) {
            assert!((g - w).abs() < 1e-6, "{g} vs {w}");
        }
        let rm = bn.running_mean().to_vec1::<f32>()?;
        let rv = bn.running_var().to_vec1::<f32>()?;
        assert!((rm[0] - 0.4).abs() < 1e-6 && (rm[1] - 0.1).abs() < 1e-6);
        assert!((rv[0] - (0.9 + 0.1 * 20. / 3.)).abs() < 1e-6);
        assert!((rv[1] - (0.9 + 0.1 * 4. / 3.)).abs() < 1e-6);
        // The update went into the VarMap's own variable.
        let stored = varmap.data().lock().unwrap()["running_mean"].as_tensor().to_vec1::<f32>()?;
        assert_eq!(stored, rm);
        Ok(())
    }

    #[test]
    fn eval_mode_uses_running_stats_and_frozen_weight_gets_no_grad() -> Result<()> {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let bn = BatchNorm::new(2, true, &KernelOptions::default(), vb)?;
        {
            let data = varmap.data().lock().unwrap();
            data["running_mean"].set(&Tensor::new(&[1f32, -2.], &dev)?)?;
            data["running_var"].set(&Tensor::new(&[4f32, 0.25], &dev)?)?;
            data["bias"].set(&Tensor::new(&[0.5f32, 0.], &dev)?)?;
        }
        let x = Var::new(&[[3f32, -2.]], &dev)?;
        let y = bn.forward_t(x.as_tensor(), false)?;
        let got = y.to_vec2::<f32>()?;
        assert!((got[0][0] - (2. / (4f32 + 1e-5).sqrt() + 0.5)).abs() < 1e-6);
        assert!(got[0][1].abs() < 1e-6);
        let grads = y.sum_all()?.backward()?;
        let data = varmap.data().lock().unwrap();
        assert!(grads.get(data["weight"].as_tensor()).is_none());
        assert!(grads.get(data["bias"].as_tensor()).is_some());
        assert!(grads.get(data["running_mean"].as_tensor()).is_none());
        Ok(())
    }
}
