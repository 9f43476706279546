//! InsightFace's IResNet: a 3x3 stride-1 stem, four stages of pre-activation basic blocks
//! (BN -> conv3x3 -> BN -> PReLU -> conv3x3 with the stride -> BN, plus a 1x1 projection
//! shortcut where the shape changes), then BN2d -> dropout -> flatten -> FC -> BN1d with its
//! scale frozen at 1. Weight names equal InsightFace's `state_dict` keys.
//!
//! Reference: InsightFace `recognition/arcface_torch/backbones/iresnet.py`; Duta et al.,
//! "Improved Residual Networks for Image and Video Recognition", 2020.

use candle::{Module, Result, Tensor};
use candle_nn::{Init, ModuleT, VarBuilder};

use arcface_kernels::profile::timed;
use arcface_kernels::{Epilogue, KernelOptions};

use crate::batch_norm::BatchNorm;
use crate::config::Config;
use crate::conv::Conv2d;
use crate::prelu::PReLU;

fn prelu(channels: usize, kernels: &KernelOptions, vb: VarBuilder) -> Result<PReLU> {
    let w = vb.get_with_hints(channels, "weight", Init::Const(0.25))?;
    Ok(PReLU::with_kernels(w, kernels))
}

/// One pre-activation basic block (`layerK.i` in InsightFace).
#[derive(Debug, Clone)]
pub struct IBasicBlock {
    bn1: BatchNorm,
    conv1: Conv2d,
    /// The layers after a convolution are `None` in a frozen block, folded into it.
    bn2: Option<BatchNorm>,
    prelu: Option<PReLU>,
    conv2: Conv2d,
    bn3: Option<BatchNorm>,
    downsample: Option<(Conv2d, Option<BatchNorm>)>,
    kernels: KernelOptions,
}

/// `layer`'s eval-mode forward of `x`, or `x` where the layer was folded away.
fn maybe<M: ModuleT>(layer: &Option<M>, x: Tensor, train: bool) -> Result<Tensor> {
    match layer {
        Some(layer) => layer.forward_t(&x, train),
        None => Ok(x),
    }
}

/// The epilogue that folds `bn` (eval mode) and then `prelu` into the convolution before them.
fn fold(bn: Option<&BatchNorm>, prelu: Option<&PReLU>) -> Result<Epilogue> {
    Ok(Epilogue {
        affine: bn.map(BatchNorm::eval_affine).transpose()?,
        prelu: prelu.map(|p| p.weight().clone()),
    })
}

impl IBasicBlock {
    /// Block from `inplanes` to `planes` channels, striding in its second conv.
    pub fn new(inplanes: usize, planes: usize, stride: usize, k: &KernelOptions, vb: VarBuilder) -> Result<Self> {
        let downsample = if stride != 1 || inplanes != planes {
            let d = vb.pp("downsample");
            Some((Conv2d::new(inplanes, planes, 1, stride, 0, k, d.pp(0))?, Some(BatchNorm::new(planes, false, k, d.pp(1))?)))
        } else {
            None
        };
        Ok(Self {
            bn1: BatchNorm::new(inplanes, false, k, vb.pp("bn1"))?,
            conv1: Conv2d::new(inplanes, planes, 3, 1, 1, k, vb.pp("conv1"))?,
            bn2: Some(BatchNorm::new(planes, false, k, vb.pp("bn2"))?),
            prelu: Some(prelu(planes, k, vb.pp("prelu"))?),
            conv2: Conv2d::new(planes, planes, 3, stride, 1, k, vb.pp("conv2"))?,
            bn3: Some(BatchNorm::new(planes, false, k, vb.pp("bn3"))?),
            downsample,
            kernels: k.clone(),
        })
    }

    /// The block frozen for inference (see [`IResNet::frozen`]): bn2 and the PReLU folded
    /// into conv1, bn3 into conv2, the shortcut's BatchNorm into its convolution.
    fn frozen(&self) -> Result<Self> {
        let downsample = match &self.downsample {
            Some((conv, bn)) => Some((conv.frozen(fold(bn.as_ref(), None)?)?, None)),
            None => None,
        };
        Ok(Self {
            bn1: self.bn1.frozen()?,
            conv1: self.conv1.frozen(fold(self.bn2.as_ref(), self.prelu.as_ref())?)?,
            bn2: None,
            prelu: None,
            conv2: self.conv2.frozen(fold(self.bn3.as_ref(), None)?)?,
            bn3: None,
            downsample,
            kernels: self.kernels.clone(),
        })
    }
}

impl ModuleT for IBasicBlock {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let out = self.bn1.forward_t(x, train)?;
        let out = maybe(&self.bn2, self.conv1.forward(&out)?, train)?;
        let out = match &self.prelu {
            Some(prelu) => prelu.forward(&out)?,
            None => out,
        };
        let out = maybe(&self.bn3, self.conv2.forward(&out)?, train)?;
        let identity = match &self.downsample {
            Some((conv, bn)) => maybe(bn, conv.forward(x)?, train)?,
            None => x.clone(),
        };
        timed(self.kernels.profiler(), "residual add", x.device(), || match self.bn2 {
            // Frozen: on rayon's threads, as the convolutions (see `eval_ops`).
            None => arcface_kernels::eval_ops::add(&out, &identity),
            Some(_) => out + identity,
        })
    }
}

/// The IResNet backbone: `N x 3 x S x S` f32 images to `N x num_features` embeddings.
#[derive(Debug, Clone)]
pub struct IResNet {
    config: Config,
    conv1: Conv2d,
    /// `None` in a frozen network, folded into `conv1`.
    bn1: Option<BatchNorm>,
    prelu: Option<PReLU>,
    stages: Vec<Vec<IBasicBlock>>,
    bn2: BatchNorm,
    fc: candle_nn::Linear,
    features: BatchNorm,
    kernels: KernelOptions,
}

impl IResNet {
    /// Builds the network from `vb` (a VarMap, safetensors or .pth) on the default kernels;
    /// fails on an invalid config or a missing/misshapen tensor.
    pub fn new(config: &Config, vb: VarBuilder) -> Result<Self> {
        Self::with_kernels(config, &KernelOptions::default(), vb)
    }

    /// As [`IResNet::new`], on the kernels `kernels` chooses (the same weights load either way).
    pub fn with_kernels(config: &Config, kernels: &KernelOptions, vb: VarBuilder) -> Result<Self> {
        let k = kernels;
        if let Err(msg) = config.validate() {
            candle::bail!("invalid IResNet config: {msg}")
        }
        let w = config.width;
        let conv1 = Conv2d::new(3, w, 3, 1, 1, k, vb.pp("conv1"))?;
        let bn1 = Some(BatchNorm::new(w, false, k, vb.pp("bn1"))?);
        let prelu = Some(prelu(w, k, vb.pp("prelu"))?);
        let mut stages = Vec::with_capacity(4);
        let mut inplanes = w;
        for (i, &blocks) in config.layers.iter().enumerate() {
            let planes = config.stage_channels(i);
            let vs = vb.pp(format!("layer{}", i + 1));
            let mut stage = Vec::with_capacity(blocks);
            for b in 0..blocks {
                let stride = if b == 0 { 2 } else { 1 };
                stage.push(IBasicBlock::new(inplanes, planes, stride, k, vs.pp(b))?);
                inplanes = planes;
            }
            stages.push(stage);
        }
        let bn2 = BatchNorm::new(inplanes, false, k, vb.pp("bn2"))?;
        let (fc_in, nf) = (config.fc_in(), config.num_features);
        let bound = 1.0 / (fc_in as f64).sqrt();
        let fc_w = vb.pp("fc").get_with_hints((nf, fc_in), "weight", Init::Uniform { lo: -bound, up: bound })?;
        let fc_b = vb.pp("fc").get_with_hints(nf, "bias", Init::Uniform { lo: -bound, up: bound })?;
        let fc = candle_nn::Linear::new(fc_w, Some(fc_b));
        let features = BatchNorm::new(nf, true, k, vb.pp("features"))?;
        Ok(Self { config: *config, conv1, bn1, prelu, stages, bn2, fc, features, kernels: k.clone() })
    }

    /// A copy for eval-mode forwards (`embed`, `verify`, `eval`): every weight is copied now,
    /// so later changes to the VarMap (an optimizer step, a load) do not reach it; each
    /// BatchNorm (and PReLU) that follows a convolution is folded into it; and each
    /// convolution is prepared by [`arcface_kernels::FrozenConv`]: 3x3 stride-1 kernels are
    /// transformed once for the Winograd kernel on the CPU, which does 2.25x fewer
    /// multiplications than im2col. It runs eval-mode forwards only (`forward_t(x, true)` is an
    /// error) and passes no gradient through its convolutions: train the original.
    pub fn frozen(&self) -> Result<Self> {
        let stages = self
            .stages
            .iter()
            .map(|stage| stage.iter().map(IBasicBlock::frozen).collect::<Result<Vec<_>>>())
            .collect::<Result<Vec<_>>>()?;
        let fc_bias = self.fc.bias().map(|b| b.detach().copy()).transpose()?;
        Ok(Self {
            config: self.config,
            conv1: self.conv1.frozen(fold(self.bn1.as_ref(), self.prelu.as_ref())?)?,
            bn1: None,
            prelu: None,
            stages,
            bn2: self.bn2.frozen()?,
            fc: candle_nn::Linear::new(self.fc.weight().detach().copy()?, fc_bias),
            features: self.features.frozen()?,
            kernels: self.kernels.clone(),
        })
    }

    /// Whether this is a [`IResNet::frozen`] copy (eval-mode forwards only).
    pub fn is_frozen(&self) -> bool {
        self.bn1.is_none()
    }

    /// The kernels its layers run on.
    pub fn kernels(&self) -> &KernelOptions {
        &self.kernels
    }

    /// The configuration this network was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl ModuleT for IResNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        if train && self.is_frozen() {
            candle::bail!("this IResNet is frozen for inference (IResNet::frozen): train the original network")
        }
        let s = self.config.input_size;
        match x.dims() {
            [_, 3, h, w] if *h == s && *w == s => {}
            d => candle::bail!("IResNet expects N x 3 x {s} x {s} input, got {d:?}"),
        }
        let mut x = maybe(&self.bn1, self.conv1.forward(x)?, train)?;
        if let Some(prelu) = &self.prelu {
            x = prelu.forward(&x)?;
        }
        for block in self.stages.iter().flatten() {
            x = block.forward_t(&x, train)?;
        }
        x = self.bn2.forward_t(&x, train)?;
        x = x.flatten_from(1)?;
        if train && self.config.dropout > 0.0 {
            x = candle_nn::ops::dropout(&x, self.config.dropout)?;
        }
        x = timed(self.kernels.profiler(), "fc", x.device(), || self.fc.forward(&x))?;
        self.features.forward_t(&x, train)
    }
}
