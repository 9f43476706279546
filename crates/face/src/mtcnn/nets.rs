//! MTCNN's three networks (Zhang et al., IEEE SPL 2016) in candle, loading facenet-pytorch's
//! published `pnet.pt`, `rnet.pt` and `onet.pt` state dicts directly. Layer for layer as
//! facenet-pytorch's `PNet`, `RNet` and `ONet`: 3x3 / 2x2 valid convolutions with per-channel
//! PReLU, max pooling with `ceil_mode`, and for R-Net and O-Net dense layers that read the
//! feature map in (W, H, C) order.
//!
//! On the CPU the networks run on [`super::direct`]'s kernels, each pyramid level and each crop
//! on one thread, levels and crops spread over candle's thread count (`RAYON_NUM_THREADS`, else
//! the physical cores); elsewhere (CUDA) as candle ops on batches. `forward` always takes the
//! candle path, which the tests use as the reference for the direct one.

use std::collections::HashMap;
use std::path::Path;

use candle::{DType, Device, Module, Tensor};

use super::direct::{self, ConvLayer, DenseLayer};
use super::planar::{Planar, Region};
use crate::{Error, Result};

/// The tensors of one weight file, by name, with the file's path for error messages.
struct Weights<'a> {
    path: &'a Path,
    tensors: HashMap<String, Tensor>,
}

impl<'a> Weights<'a> {
    fn read(path: &'a Path, device: &Device) -> Result<Weights<'a>> {
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

    /// The tensor `name`, which must have `shape` and only finite values.
    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
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

    fn conv(&self, name: &str, out_c: usize, in_c: usize, k: usize) -> Result<Conv> {
        Ok(Conv {
            weight: self.get(&format!("{name}.weight"), &[out_c, in_c, k, k])?,
            bias: self.get(&format!("{name}.bias"), &[out_c])?.reshape((1, out_c, 1, 1))?,
        })
    }

    fn prelu(&self, name: &str, c: usize, spatial: bool) -> Result<Prelu> {
        let shape: &[usize] = if spatial { &[1, c, 1, 1] } else { &[1, c] };
        Ok(Prelu { alpha: self.get(&format!("{name}.weight"), &[c])?.reshape(shape)? })
    }

    fn values(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let bad = |e: candle::Error| Error::Weights { path: self.path.to_path_buf(), message: e.to_string() };
        self.get(name, shape)?.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(bad)
    }

    /// The direct kernel of convolution `name`, followed by PReLU `prelu` if given.
    fn conv_direct(&self, name: &str, prelu: Option<&str>, out_c: usize, in_c: usize, k: usize) -> Result<ConvLayer> {
        let weight = self.values(&format!("{name}.weight"), &[out_c, in_c, k, k])?;
        let bias = self.values(&format!("{name}.bias"), &[out_c])?;
        let alpha = prelu.map(|p| self.values(&format!("{p}.weight"), &[out_c])).transpose()?;
        Ok(ConvLayer::new(&weight, bias, alpha, out_c, in_c, k))
    }

    /// The direct kernel of dense layer `name`, followed by PReLU `prelu` if given.
    fn dense_direct(&self, name: &str, prelu: Option<&str>, out_f: usize, in_f: usize) -> Result<DenseLayer> {
        let weight = self.values(&format!("{name}.weight"), &[out_f, in_f])?;
        let bias = self.values(&format!("{name}.bias"), &[out_f])?;
        let alpha = prelu.map(|p| self.values(&format!("{p}.weight"), &[out_f])).transpose()?;
        Ok(DenseLayer::new(&weight, bias, alpha, out_f, in_f))
    }

    fn dense(&self, name: &str, out_f: usize, in_f: usize) -> Result<Dense> {
        Ok(Dense {
            weight_t: self.get(&format!("{name}.weight"), &[out_f, in_f])?.t()?.contiguous()?,
            bias: self.get(&format!("{name}.bias"), &[out_f])?.reshape((1, out_f))?,
        })
    }
}

/// A valid (unpadded), stride-1 convolution with bias.
struct Conv {
    weight: Tensor,
    bias: Tensor,
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> candle::Result<Tensor> {
        x.conv2d(&self.weight, 0, 1, 1, 1)?.broadcast_add(&self.bias)
    }
}

/// PReLU with one slope per channel.
struct Prelu {
    alpha: Tensor,
}

impl Module for Prelu {
    fn forward(&self, x: &Tensor) -> candle::Result<Tensor> {
        x.relu()? + x.minimum(0f32)?.broadcast_mul(&self.alpha)?
    }
}

/// A fully connected layer, `x W^T + b`.
struct Dense {
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
fn max_pool_ceil(x: &Tensor, k: usize, s: usize) -> candle::Result<Tensor> {
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
fn face_probability(logits: &Tensor) -> candle::Result<Tensor> {
    candle_nn::ops::softmax(logits, 1)?.narrow(1, 1, 1)?.squeeze(1)
}

/// Flattens an `N x C x H x W` map in (W, H, C) order, as facenet-pytorch's
/// `permute(0, 3, 2, 1)` before its dense layers.
fn flatten_whc(x: &Tensor) -> candle::Result<Tensor> {
    let n = x.dim(0)?;
    x.permute((0, 3, 2, 1))?.contiguous()?.reshape((n, ()))
}

/// The thread count of the direct kernels, as candle's CPU ops (`RAYON_NUM_THREADS`, else the
/// physical cores); none off the CPU.
fn direct_threads(device: &Device) -> Option<usize> {
    device.is_cpu().then(candle::utils::get_num_threads)
}

/// P-Net's maps for one pyramid level: face probability (`height x width`, row-major) and the
/// four regression planes after it.
pub(crate) struct Level {
    /// Width of the maps.
    pub width: usize,
    /// Face probability per cell.
    pub prob: Vec<f32>,
    /// `dx1, dy1, dx2, dy2` planes, each as long as `prob`.
    pub reg: Vec<f32>,
}

impl Level {
    /// The four regression planes.
    pub fn reg_planes(&self) -> [&[f32]; 4] {
        let n = self.prob.len();
        std::array::from_fn(|k| &self.reg[k * n..(k + 1) * n])
    }
}

/// The size of pyramid level `scale` of an `h x w` image, as facenet-pytorch rounds it.
fn level_size(h: usize, w: usize, scale: f64) -> (usize, usize) {
    ((h as f64 * scale + 1.0) as usize, (w as f64 * scale + 1.0) as usize)
}

/// The proposal network: fully convolutional, one output per 12x12 window at stride 2.
pub struct PNet {
    conv1: Conv,
    prelu1: Prelu,
    conv2: Conv,
    prelu2: Prelu,
    conv3: Conv,
    prelu3: Prelu,
    conv4_1: Conv,
    conv4_2: Conv,
    direct: Option<PNetDirect>,
    device: Device,
}

/// P-Net on the direct kernels; `head` is conv4_1 and conv4_2 as one 6-channel convolution.
struct PNetDirect {
    conv: [ConvLayer; 3],
    head: ConvLayer,
    threads: usize,
}

impl PNet {
    /// Loads `pnet.pt`.
    pub fn load(path: &Path, device: &Device) -> Result<PNet> {
        let w = Weights::read(path, device)?;
        let direct = match direct_threads(device) {
            Some(threads) => {
                let mut head = w.values("conv4_1.weight", &[2, 32, 1, 1])?;
                head.extend(w.values("conv4_2.weight", &[4, 32, 1, 1])?);
                let mut head_bias = w.values("conv4_1.bias", &[2])?;
                head_bias.extend(w.values("conv4_2.bias", &[4])?);
                Some(PNetDirect {
                    conv: [
                        w.conv_direct("conv1", Some("prelu1"), 10, 3, 3)?,
                        w.conv_direct("conv2", Some("prelu2"), 16, 10, 3)?,
                        w.conv_direct("conv3", Some("prelu3"), 32, 16, 3)?,
                    ],
                    head: ConvLayer::new(&head, head_bias, None, 6, 32, 1),
                    threads,
                })
            }
            None => None,
        };
        Ok(PNet {
            conv1: w.conv("conv1", 10, 3, 3)?,
            prelu1: w.prelu("prelu1", 10, true)?,
            conv2: w.conv("conv2", 16, 10, 3)?,
            prelu2: w.prelu("prelu2", 16, true)?,
            conv3: w.conv("conv3", 32, 16, 3)?,
            prelu3: w.prelu("prelu3", 32, true)?,
            conv4_1: w.conv("conv4_1", 2, 32, 1)?,
            conv4_2: w.conv("conv4_2", 4, 32, 1)?,
            direct,
            device: device.clone(),
        })
    }

    /// Face probability `N x H' x W'` and box regression `N x 4 x H' x W'`.
    pub fn forward(&self, x: &Tensor) -> candle::Result<(Tensor, Tensor)> {
        let x = self.prelu1.forward(&self.conv1.forward(x)?)?;
        let x = max_pool_ceil(&x, 2, 2)?;
        let x = self.prelu2.forward(&self.conv2.forward(&x)?)?;
        let x = self.prelu3.forward(&self.conv3.forward(&x)?)?;
        Ok((face_probability(&self.conv4_1.forward(&x)?)?, self.conv4_2.forward(&x)?))
    }

    /// The maps of `img` resampled by each of `scales` (area resampling, MTCNN's input
    /// normalization), in the order of `scales`; on the CPU the levels run side by side.
    pub(crate) fn pyramid(&self, img: &Planar, scales: &[f64]) -> Result<Vec<Level>> {
        let (h, w) = (img.height, img.width);
        let resampled = |scale: f64| {
            let (hs, ws) = level_size(h, w, scale);
            let mut data = vec![0f32; 3 * hs * ws];
            img.area_resize_normalized(img.full(), hs, ws, &mut data);
            (data, hs, ws)
        };
        if let Some(d) = &self.direct {
            return Ok(direct::parallel_map(scales.len(), d.threads, |i| {
                let (x, hs, ws) = resampled(scales[i]);
                d.level(&x, hs, ws)
            }));
        }
        let mut out = Vec::with_capacity(scales.len());
        for &scale in scales {
            let (data, hs, ws) = resampled(scale);
            let x = Tensor::from_vec(data, (1, 3, hs, ws), &self.device)?;
            let (prob, reg) = self.forward(&x)?;
            let width = prob.dim(2)?;
            out.push(Level { width, prob: prob.flatten_all()?.to_vec1()?, reg: reg.flatten_all()?.to_vec1()? });
        }
        Ok(out)
    }
}

impl PNetDirect {
    fn level(&self, x: &[f32], h: usize, w: usize) -> Level {
        let (mut wide, mut a, mut b) = (Vec::new(), Vec::new(), Vec::new());
        let (h, w) = self.conv[0].forward(x, h, w, &mut wide, &mut a);
        let (h, w) = direct::max_pool_ceil(&a, 10, h, w, 2, 2, &mut b);
        let (h, w) = self.conv[1].forward(&b, h, w, &mut wide, &mut a);
        let (h, w) = self.conv[2].forward(&a, h, w, &mut wide, &mut b);
        let (h, w) = self.head.forward(&b, h, w, &mut wide, &mut a);
        let n = h * w;
        let prob = (0..n).map(|i| direct::face_probability(a[i], a[n + i])).collect();
        Level { width: w, prob, reg: a.split_off(2 * n) }
    }
}

/// `regions` of `img`, each resampled to `size x size` and normalized, as one `N x 3 x size x
/// size` batch.
fn crop_batch(img: &Planar, regions: &[Region], size: usize, device: &Device) -> candle::Result<Tensor> {
    let per = 3 * size * size;
    let mut data = vec![0f32; regions.len() * per];
    for (r, dst) in regions.iter().zip(data.chunks_exact_mut(per)) {
        img.area_resize_normalized(*r, size, size, dst);
    }
    Tensor::from_vec(data, (regions.len(), 3, size, size), device)
}

/// One region of `img` resampled to `size x size` and normalized.
fn crop(img: &Planar, region: Region, size: usize) -> Vec<f32> {
    let mut data = vec![0f32; 3 * size * size];
    img.area_resize_normalized(region, size, size, &mut data);
    data
}

/// The refinement network, on 24x24 crops.
pub struct RNet {
    conv1: Conv,
    prelu1: Prelu,
    conv2: Conv,
    prelu2: Prelu,
    conv3: Conv,
    prelu3: Prelu,
    dense4: Dense,
    prelu4: Prelu,
    dense5_1: Dense,
    dense5_2: Dense,
    direct: Option<RNetDirect>,
    device: Device,
}

/// R-Net on the direct kernels.
struct RNetDirect {
    conv: [ConvLayer; 3],
    dense4: DenseLayer,
    dense5_1: DenseLayer,
    dense5_2: DenseLayer,
    threads: usize,
}

impl RNet {
    /// Loads `rnet.pt`.
    pub fn load(path: &Path, device: &Device) -> Result<RNet> {
        let w = Weights::read(path, device)?;
        let direct = match direct_threads(device) {
            Some(threads) => Some(RNetDirect {
                conv: [
                    w.conv_direct("conv1", Some("prelu1"), 28, 3, 3)?,
                    w.conv_direct("conv2", Some("prelu2"), 48, 28, 3)?,
                    w.conv_direct("conv3", Some("prelu3"), 64, 48, 2)?,
                ],
                dense4: w.dense_direct("dense4", Some("prelu4"), 128, 576)?,
                dense5_1: w.dense_direct("dense5_1", None, 2, 128)?,
                dense5_2: w.dense_direct("dense5_2", None, 4, 128)?,
                threads,
            }),
            None => None,
        };
        Ok(RNet {
            conv1: w.conv("conv1", 28, 3, 3)?,
            prelu1: w.prelu("prelu1", 28, true)?,
            conv2: w.conv("conv2", 48, 28, 3)?,
            prelu2: w.prelu("prelu2", 48, true)?,
            conv3: w.conv("conv3", 64, 48, 2)?,
            prelu3: w.prelu("prelu3", 64, true)?,
            dense4: w.dense("dense4", 128, 576)?,
            prelu4: w.prelu("prelu4", 128, false)?,
            dense5_1: w.dense("dense5_1", 2, 128)?,
            dense5_2: w.dense("dense5_2", 4, 128)?,
            direct,
            device: device.clone(),
        })
    }

    /// Face probability `N` and box regression `N x 4`.
    pub fn forward(&self, x: &Tensor) -> candle::Result<(Tensor, Tensor)> {
        let x = self.prelu1.forward(&self.conv1.forward(x)?)?;
        let x = max_pool_ceil(&x, 3, 2)?;
        let x = self.prelu2.forward(&self.conv2.forward(&x)?)?;
        let x = max_pool_ceil(&x, 3, 2)?;
        let x = self.prelu3.forward(&self.conv3.forward(&x)?)?;
        let x = self.prelu4.forward(&self.dense4.forward(&flatten_whc(&x)?)?)?;
        Ok((face_probability(&self.dense5_1.forward(&x)?)?, self.dense5_2.forward(&x)?))
    }

    /// Face probability and box regression of each region of `img` (resampled to 24x24); on
    /// the CPU the crops run side by side.
    pub(crate) fn score(&self, img: &Planar, regions: &[Region]) -> Result<Vec<(f32, [f32; 4])>> {
        if let Some(d) = &self.direct {
            return Ok(direct::parallel_map(regions.len(), d.threads, |i| d.crop(&crop(img, regions[i], 24))));
        }
        let (prob, reg) = self.forward(&crop_batch(img, regions, 24, &self.device)?)?;
        let (prob, reg) = (prob.to_vec1::<f32>()?, reg.to_vec2::<f32>()?);
        Ok(prob.into_iter().zip(reg).map(|(p, r)| (p, [r[0], r[1], r[2], r[3]])).collect())
    }
}

impl RNetDirect {
    fn crop(&self, x: &[f32]) -> (f32, [f32; 4]) {
        let (mut wide, mut a, mut b) = (Vec::new(), Vec::new(), Vec::new());
        let (h, w) = self.conv[0].forward(x, 24, 24, &mut wide, &mut a);
        let (h, w) = direct::max_pool_ceil(&a, 28, h, w, 3, 2, &mut b);
        let (h, w) = self.conv[1].forward(&b, h, w, &mut wide, &mut a);
        let (h, w) = direct::max_pool_ceil(&a, 48, h, w, 3, 2, &mut b);
        let (h, w) = self.conv[2].forward(&b, h, w, &mut wide, &mut a);
        let x = self.dense4.forward(&direct::flatten_whc(&a, 64, h, w));
        let logits = self.dense5_1.forward(&x);
        let r = self.dense5_2.forward(&x);
        (direct::face_probability(logits[0], logits[1]), [r[0], r[1], r[2], r[3]])
    }
}

/// The output network, on 48x48 crops: final score, box regression and five landmarks.
pub struct ONet {
    conv1: Conv,
    prelu1: Prelu,
    conv2: Conv,
    prelu2: Prelu,
    conv3: Conv,
    prelu3: Prelu,
    conv4: Conv,
    prelu4: Prelu,
    dense5: Dense,
    prelu5: Prelu,
    dense6_1: Dense,
    dense6_2: Dense,
    dense6_3: Dense,
    direct: Option<ONetDirect>,
    device: Device,
}

/// O-Net on the direct kernels.
struct ONetDirect {
    conv: [ConvLayer; 4],
    dense5: DenseLayer,
    dense6: [DenseLayer; 3],
    threads: usize,
}

/// O-Net's output for one crop: face probability, box regression, landmarks (five x, then
/// five y, relative to the box).
pub(crate) type ONetOutput = (f32, [f32; 4], [f32; 10]);

impl ONet {
    /// Loads `onet.pt`.
    pub fn load(path: &Path, device: &Device) -> Result<ONet> {
        let w = Weights::read(path, device)?;
        let direct = match direct_threads(device) {
            Some(threads) => Some(ONetDirect {
                conv: [
                    w.conv_direct("conv1", Some("prelu1"), 32, 3, 3)?,
                    w.conv_direct("conv2", Some("prelu2"), 64, 32, 3)?,
                    w.conv_direct("conv3", Some("prelu3"), 64, 64, 3)?,
                    w.conv_direct("conv4", Some("prelu4"), 128, 64, 2)?,
                ],
                dense5: w.dense_direct("dense5", Some("prelu5"), 256, 1152)?,
                dense6: [
                    w.dense_direct("dense6_1", None, 2, 256)?,
                    w.dense_direct("dense6_2", None, 4, 256)?,
                    w.dense_direct("dense6_3", None, 10, 256)?,
                ],
                threads,
            }),
            None => None,
        };
        Ok(ONet {
            conv1: w.conv("conv1", 32, 3, 3)?,
            prelu1: w.prelu("prelu1", 32, true)?,
            conv2: w.conv("conv2", 64, 32, 3)?,
            prelu2: w.prelu("prelu2", 64, true)?,
            conv3: w.conv("conv3", 64, 64, 3)?,
            prelu3: w.prelu("prelu3", 64, true)?,
            conv4: w.conv("conv4", 128, 64, 2)?,
            prelu4: w.prelu("prelu4", 128, true)?,
            dense5: w.dense("dense5", 256, 1152)?,
            prelu5: w.prelu("prelu5", 256, false)?,
            dense6_1: w.dense("dense6_1", 2, 256)?,
            dense6_2: w.dense("dense6_2", 4, 256)?,
            dense6_3: w.dense("dense6_3", 10, 256)?,
            direct,
            device: device.clone(),
        })
    }

    /// Face probability `N`, box regression `N x 4` and landmarks `N x 10` (five x, then five
    /// y, relative to the box).
    pub fn forward(&self, x: &Tensor) -> candle::Result<(Tensor, Tensor, Tensor)> {
        let x = self.prelu1.forward(&self.conv1.forward(x)?)?;
        let x = max_pool_ceil(&x, 3, 2)?;
        let x = self.prelu2.forward(&self.conv2.forward(&x)?)?;
        let x = max_pool_ceil(&x, 3, 2)?;
        let x = self.prelu3.forward(&self.conv3.forward(&x)?)?;
        let x = max_pool_ceil(&x, 2, 2)?;
        let x = self.prelu4.forward(&self.conv4.forward(&x)?)?;
        let x = self.prelu5.forward(&self.dense5.forward(&flatten_whc(&x)?)?)?;
        let prob = face_probability(&self.dense6_1.forward(&x)?)?;
        Ok((prob, self.dense6_2.forward(&x)?, self.dense6_3.forward(&x)?))
    }

    /// O-Net's output for each region of `img` (resampled to 48x48); on the CPU the crops run
    /// side by side.
    pub(crate) fn score(&self, img: &Planar, regions: &[Region]) -> Result<Vec<ONetOutput>> {
        if let Some(d) = &self.direct {
            return Ok(direct::parallel_map(regions.len(), d.threads, |i| d.crop(&crop(img, regions[i], 48))));
        }
        let (prob, reg, marks) = self.forward(&crop_batch(img, regions, 48, &self.device)?)?;
        let (prob, reg, marks) = (prob.to_vec1::<f32>()?, reg.to_vec2::<f32>()?, marks.to_vec2::<f32>()?);
        Ok(prob
            .into_iter()
            .zip(reg.into_iter().zip(marks))
            .map(|(p, (r, m))| (p, [r[0], r[1], r[2], r[3]], std::array::from_fn(|k| m[k])))
            .collect())
    }
}

impl ONetDirect {
    fn crop(&self, x: &[f32]) -> ONetOutput {
        let (mut wide, mut a, mut b) = (Vec::new(), Vec::new(), Vec::new());
        let (h, w) = self.conv[0].forward(x, 48, 48, &mut wide, &mut a);
        let (h, w) = direct::max_pool_ceil(&a, 32, h, w, 3, 2, &mut b);
        let (h, w) = self.conv[1].forward(&b, h, w, &mut wide, &mut a);
        let (h, w) = direct::max_pool_ceil(&a, 64, h, w, 3, 2, &mut b);
        let (h, w) = self.conv[2].forward(&b, h, w, &mut wide, &mut a);
        let (h, w) = direct::max_pool_ceil(&a, 64, h, w, 2, 2, &mut b);
        let (h, w) = self.conv[3].forward(&b, h, w, &mut wide, &mut a);
        let x = self.dense5.forward(&direct::flatten_whc(&a, 128, h, w));
        let logits = self.dense6[0].forward(&x);
        let r = self.dense6[1].forward(&x);
        let m = self.dense6[2].forward(&x);
        (direct::face_probability(logits[0], logits[1]), [r[0], r[1], r[2], r[3]], std::array::from_fn(|k| m[k]))
    }
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

    #[test]
    fn missing_weights_name_the_file_and_the_command() {
        let err = PNet::load(Path::new("/nonexistent/pnet.pt"), &Device::Cpu).err().unwrap().to_string();
        assert!(err.contains("/nonexistent/pnet.pt") && err.contains("download mtcnn"), "{err}");
    }
}

