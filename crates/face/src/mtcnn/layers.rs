//! The layers of MTCNN's networks as candle modules, and the reading of their weights from
//! facenet-pytorch's state dicts, checked for names, shapes and finite values; the same weights
//! also build [`super::direct`]'s CPU kernels.

use std::collections::HashMap;
use std::path::Path;

use candle::{DType, Device, Module, Tensor};

use super::direct::{ConvLayer, DenseLayer};
use crate::{Error, Result};

/// The tensors of one weight file, by name, with the file's path for error messages.
pub(super) struct Weights<'a> {
    path: &'a Path,
    tensors: HashMap<String, Tensor>,
}

impl<'a> Weights<'a> {
    /// Reads a state dict (`.pt`) onto `device`.
    pub fn read(path: &'a Path, device: &Device) -> Result<Weights<'a>> {
        let bad = |message: String| Error::Weights { path: path.to_path_buf(), message };
        if !path.is_file() {
            return Err(bad(
                "no such file (fetch the MTCNN weights with `cargo xtask download mtcnn`)".into(),
            ));
        }
        let tensors = super::torch_file::read_state_dict(path).map_err(bad)?;
        let tensors = tensors
            .into_iter()
            .map(|(k, t)| Ok((k, t.to_dtype(DType::F32)?.to_device(device)?)))
            .collect::<candle::Result<_>>()
            .map_err(|e| bad(e.to_string()))?;
        Ok(Weights { path, tensors })
    }

    /// Weights given as tensors, `path` naming them in errors.
    #[cfg(test)]
    pub fn from_tensors(path: &'a Path, tensors: HashMap<String, Tensor>) -> Weights<'a> {
        Weights { path, tensors }
    }

    /// The tensor `name`, which must have `shape` and only finite values.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let bad = |message: String| Error::Weights { path: self.path.to_path_buf(), message };
        let t = self.tensors.get(name).ok_or_else(|| bad(format!("no tensor `{name}`")))?;
        if t.dims() != shape {
            return Err(bad(format!("`{name}` has shape {:?}, expected {shape:?}", t.dims())));
        }
        let finite = t
            .flatten_all()
            .and_then(|v| v.to_vec1::<f32>())
            .map_err(|e| bad(e.to_string()))?
            .iter()
            .all(|v| v.is_finite());
        if !finite {
            return Err(bad(format!("`{name}` holds NaN or infinite values: the file is damaged")));
        }
        Ok(t.clone())
    }

    /// Candle convolution `name`.
    pub fn conv(&self, name: &str, out_c: usize, in_c: usize, k: usize) -> Result<Conv> {
        Ok(Conv {
            weight: self.get(&format!("{name}.weight"), &[out_c, in_c, k, k])?,
            bias: self.get(&format!("{name}.bias"), &[out_c])?.reshape((1, out_c, 1, 1))?,
        })
    }

    /// Candle PReLU `name` over `c` channels (of a map if `spatial`, else of a vector).
    pub fn prelu(&self, name: &str, c: usize, spatial: bool) -> Result<Prelu> {
        let shape: &[usize] = if spatial { &[1, c, 1, 1] } else { &[1, c] };
        Ok(Prelu { alpha: self.get(&format!("{name}.weight"), &[c])?.reshape(shape)? })
    }

    /// The values of tensor `name` (checked as [`Self::get`] does), row-major.
    pub fn values(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let bad = |e: candle::Error| Error::Weights { path: self.path.to_path_buf(), message: e.to_string() };
        self.get(name, shape)?.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(bad)
    }

    /// The direct kernel of convolution `name`, followed by PReLU `prelu` if given.
    pub fn conv_direct(&self, name: &str, prelu: Option<&str>, out_c: usize, in_c: usize, k: usize) -> Result<ConvLayer> {
        let weight = self.values(&format!("{name}.weight"), &[out_c, in_c, k, k])?;
        let bias = self.values(&format!("{name}.bias"), &[out_c])?;
        let alpha = prelu.map(|p| self.values(&format!("{p}.weight"), &[out_c])).transpose()?;
        Ok(ConvLayer::new(&weight, bias, alpha, out_c, in_c, k))
    }

    /// The direct kernel of dense layer `name`, followed by PReLU `prelu` if given.
    pub fn dense_direct(&self, name: &str, prelu: Option<&str>, out_f: usize, in_f: usize) -> Result<DenseLayer> {
        let weight = self.values(&format!("{name}.weight"), &[out_f, in_f])?;
        let bias = self.values(&format!("{name}.bias"), &[out_f])?;
        let alpha = prelu.map(|p| self.values(&format!("{p}.weight"), &[out_f])).transpose()?;
        Ok(DenseLayer::new(&weight, bias, alpha, out_f, in_f))
    }

    /// Candle dense layer `name`.
    pub fn dense(&self, name: &str, out_f: usize, in_f: usize) -> Result<Dense> {
        Ok(Dense {
            weight_t: self.get(&format!("{name}.weight"), &[out_f, in_f])?.t()?.contiguous()?,
            bias: self.get(&format!("{name}.bias"), &[out_f])?.reshape((1, out_f))?,
        })
    }
}

/// A valid (unpadded), stride-1 convolution with bias.
pub(super) struct Conv {
    weight: Tensor,
    bias: Tensor,
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> candle::Result<Tensor> {
        x.conv2d(&self.weight, 0, 1, 1, 1)?.broadcast_add(&self.bias)
    }
}

/// PReLU with one slope per channel.
pub(super) struct Prelu {
    alpha: Tensor,
}

impl Module for Prelu {
    fn forward(&self, x: &Tensor) -> candle::Result<Tensor> {
        x.relu()? + x.minimum(0f32)?.broadcast_mul(&self.alpha)?
    }
}

/// A fully connected layer, `x W^T + b`.
pub(super) struct Dense {
    weight_t: Tensor,
    bias: Tensor,
}

impl Module for Dense {
    fn forward(&self, x: &Tensor) -> candle::Result<Tensor> {
        x.matmul(&self.weight_t)?.broadcast_add(&self.bias)
    }
}

/// Max pooling with PyTorch's `ceil_mode=True`: the last window may hang over the right and
/// bottom edges and then covers only what is inside. The input is padded with -inf to the
/// size the last window needs.
pub(super) fn max_pool_ceil(x: &Tensor, k: usize, s: usize) -> candle::Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let out = |len: usize| (len.saturating_sub(k)).div_ceil(s) + 1;
    let (ph, pw) = ((out(h) - 1) * s + k - h, (out(w) - 1) * s + k - w);
    let mut x = x.clone();
    if pw > 0 {
        let pad = Tensor::full(f32::NEG_INFINITY, (n, c, h, pw), x.device())?;
        x = Tensor::cat(&[&x, &pad], 3)?;
    }
    if ph > 0 {
        let pad = Tensor::full(f32::NEG_INFINITY, (n, c, ph, w + pw), x.device())?;
        x = Tensor::cat(&[&x, &pad], 2)?;
    }
    x.max_pool2d_with_stride(k, s)
}

/// Softmax over the two classes of dimension 1, keeping the face probability (class 1).
pub(super) fn face_probability(logits: &Tensor) -> candle::Result<Tensor> {
    candle_nn::ops::softmax(logits, 1)?.narrow(1, 1, 1)?.squeeze(1)
}

/// Flattens an `N x C x H x W` map in (W, H, C) order, as facenet-pytorch's
/// `permute(0, 3, 2, 1)` before its dense layers.
pub(super) fn flatten_whc(x: &Tensor) -> candle::Result<Tensor> {
    let n = x.dim(0)?;
    x.permute((0, 3, 2, 1))?.contiguous()?.reshape((n, ()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceil_mode_pooling_keeps_the_overhanging_window() {
        // 1 x 1 x 1 x 5 with k = 2, s = 2: PyTorch's ceil mode gives 3 outputs, the last
        // from the single value 5.
        let x = Tensor::new(&[1f32, 4., 2., 3., 5.], &Device::Cpu).unwrap().reshape((1, 1, 1, 5)).unwrap();
        let x = Tensor::cat(&[&x, &x], 2).unwrap();
        let y = max_pool_ceil(&x, 2, 2).unwrap();
        assert_eq!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), vec![4., 3., 5.]);
    }

    #[test]
    fn flatten_reads_width_first() {
        // C = 2, H = 1, W = 2: values c0:[a b], c1:[c d] flatten in (W, H, C) order as a c b d.
        let x = Tensor::new(&[1f32, 2., 3., 4.], &Device::Cpu).unwrap().reshape((1, 2, 1, 2)).unwrap();
        assert_eq!(flatten_whc(&x).unwrap().to_vec2::<f32>().unwrap(), vec![vec![1., 3., 2., 4.]]);
    }
}
