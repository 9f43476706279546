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

use std::path::Path;

use candle::{Device, Module, Tensor};

use super::direct::{self, ConvLayer, DenseLayer, Map, Scratch, ScratchPool};
use super::layers::{face_probability, flatten_whc, max_pool_ceil, Conv, Dense, Prelu, Weights};
use super::planar::{AreaSums, Region};
use crate::Result;

/// The thread count of the direct kernels, as candle's CPU ops (`RAYON_NUM_THREADS`, else the
/// physical cores), or 1 when the caller already runs on a rayon worker (photos detected in
/// parallel: more threads per photo would only compete for the same cores); none off the CPU.
fn direct_threads(device: &Device) -> Option<usize> {
    let threads = if rayon::current_thread_index().is_some() { 1 } else { candle::utils::get_num_threads() };
    device.is_cpu().then_some(threads)
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
    scratch: ScratchPool,
}

impl PNet {
    /// Loads `pnet.pt`.
    pub fn load(path: &Path, device: &Device) -> Result<PNet> {
        Self::new(&Weights::read(path, device)?, device, direct_threads(device))
    }

    /// The network from its weights, on the direct kernels with `direct` threads if given.
    fn new(w: &Weights, device: &Device, direct: Option<usize>) -> Result<PNet> {
        let direct = match direct {
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
                    scratch: ScratchPool::default(),
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
    pub(crate) fn pyramid(&self, img: &AreaSums, scales: &[f64]) -> Result<Vec<Level>> {
        let size = |scale: f64| level_size(img.height, img.width, scale);
        if let Some(d) = &self.direct {
            return Ok(direct::parallel_map(scales.len(), d.threads, &d.scratch, |s, i| {
                let (h, w) = size(scales[i]);
                resample(img, img.full(), h, w, &mut s.input);
                d.level(s, h, w)
            }));
        }
        let mut out = Vec::with_capacity(scales.len());
        for &scale in scales {
            let (h, w) = size(scale);
            let mut data = Vec::new();
            resample(img, img.full(), h, w, &mut data);
            let x = Tensor::from_vec(data, (1, 3, h, w), &self.device)?;
            let (prob, reg) = self.forward(&x)?;
            let width = prob.dim(2)?;
            out.push(Level { width, prob: prob.flatten_all()?.to_vec1()?, reg: reg.flatten_all()?.to_vec1()? });
        }
        Ok(out)
    }
}

impl PNetDirect {
    /// P-Net on the `h x w` level in `s.input`.
    fn level(&self, s: &mut Scratch, h: usize, w: usize) -> Level {
        let Scratch { input, a, b } = s;
        let m = self.conv[0].forward(input, Map::dense(3, h, w), a);
        let m = direct::max_pool_ceil(a, m, 2, 2, b);
        let m = self.conv[1].forward(b, m, a);
        let m = self.conv[2].forward(a, m, b);
        let m = self.head.forward(b, m, a);
        let a: &[f32] = a;
        let plane = |c: usize| (0..m.h).flat_map(move |y| m.row(a, c, y)).copied();
        let prob = plane(0).zip(plane(1)).map(|(l0, l1)| direct::face_probability(l0, l1)).collect();
        Level { width: m.w, prob, reg: (2..6).flat_map(plane).collect() }
    }
}

/// `region` of `img` resampled to `h x w` and normalized into `out`.
fn resample(img: &AreaSums, region: Region, h: usize, w: usize, out: &mut Vec<f32>) {
    out.clear();
    out.resize(3 * h * w, 0.0);
    img.area_resize_normalized(region, h, w, out);
}

/// `regions` of `img`, each resampled to `size x size` and normalized, as one `N x 3 x size x
/// size` batch.
fn crop_batch(img: &AreaSums, regions: &[Region], size: usize, device: &Device) -> candle::Result<Tensor> {
    let per = 3 * size * size;
    let mut data = vec![0f32; regions.len() * per];
    for (r, dst) in regions.iter().zip(data.chunks_exact_mut(per)) {
        img.area_resize_normalized(*r, size, size, dst);
    }
    Tensor::from_vec(data, (regions.len(), 3, size, size), device)
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
    scratch: ScratchPool,
}

impl RNet {
    /// Loads `rnet.pt`.
    pub fn load(path: &Path, device: &Device) -> Result<RNet> {
        Self::new(&Weights::read(path, device)?, device, direct_threads(device))
    }

    /// The network from its weights, on the direct kernels with `direct` threads if given.
    fn new(w: &Weights, device: &Device, direct: Option<usize>) -> Result<RNet> {
        let direct = match direct {
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
                scratch: ScratchPool::default(),
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
    pub(crate) fn score(&self, img: &AreaSums, regions: &[Region]) -> Result<Vec<(f32, [f32; 4])>> {
        if let Some(d) = &self.direct {
            return Ok(direct::parallel_map(regions.len(), d.threads, &d.scratch, |s, i| {
                resample(img, regions[i], 24, 24, &mut s.input);
                d.crop(s)
            }));
        }
        let (prob, reg) = self.forward(&crop_batch(img, regions, 24, &self.device)?)?;
        let (prob, reg) = (prob.to_vec1::<f32>()?, reg.to_vec2::<f32>()?);
        Ok(prob.into_iter().zip(reg).map(|(p, r)| (p, [r[0], r[1], r[2], r[3]])).collect())
    }
}

impl RNetDirect {
    /// R-Net on the 24x24 crop in `s.input`.
    fn crop(&self, s: &mut Scratch) -> (f32, [f32; 4]) {
        let Scratch { input, a, b } = s;
        let m = self.conv[0].forward(input, Map::dense(3, 24, 24), a);
        let m = direct::max_pool_ceil(a, m, 3, 2, b);
        let m = self.conv[1].forward(b, m, a);
        let m = direct::max_pool_ceil(a, m, 3, 2, b);
        let m = self.conv[2].forward(b, m, a);
        let x = self.dense4.forward(&direct::flatten_whc(a, m));
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
    scratch: ScratchPool,
}

/// O-Net's output for one crop: face probability, box regression, landmarks (five x, then
/// five y, relative to the box).
pub(crate) type ONetOutput = (f32, [f32; 4], [f32; 10]);

impl ONet {
    /// Loads `onet.pt`.
    pub fn load(path: &Path, device: &Device) -> Result<ONet> {
        Self::new(&Weights::read(path, device)?, device, direct_threads(device))
    }

    /// The network from its weights, on the direct kernels with `direct` threads if given.
    fn new(w: &Weights, device: &Device, direct: Option<usize>) -> Result<ONet> {
        let direct = match direct {
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
                scratch: ScratchPool::default(),
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
    pub(crate) fn score(&self, img: &AreaSums, regions: &[Region]) -> Result<Vec<ONetOutput>> {
        if let Some(d) = &self.direct {
            return Ok(direct::parallel_map(regions.len(), d.threads, &d.scratch, |s, i| {
                resample(img, regions[i], 48, 48, &mut s.input);
                d.crop(s)
            }));
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
    /// O-Net on the 48x48 crop in `s.input`.
    fn crop(&self, s: &mut Scratch) -> ONetOutput {
        let Scratch { input, a, b } = s;
        let m = self.conv[0].forward(input, Map::dense(3, 48, 48), a);
        let m = direct::max_pool_ceil(a, m, 3, 2, b);
        let m = self.conv[1].forward(b, m, a);
        let m = direct::max_pool_ceil(a, m, 3, 2, b);
        let m = self.conv[2].forward(b, m, a);
        let m = direct::max_pool_ceil(a, m, 2, 2, b);
        let m = self.conv[3].forward(b, m, a);
        let x = self.dense5.forward(&direct::flatten_whc(a, m));
        let logits = self.dense6[0].forward(&x);
        let r = self.dense6[1].forward(&x);
        let m = self.dense6[2].forward(&x);
        (direct::face_probability(logits[0], logits[1]), [r[0], r[1], r[2], r[3]], std::array::from_fn(|k| m[k]))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn missing_weights_name_the_file_and_the_command() {
        let err = PNet::load(Path::new("/nonexistent/pnet.pt"), &Device::Cpu).err().unwrap().to_string();
        assert!(err.contains("/nonexistent/pnet.pt") && err.contains("download mtcnn"), "{err}");
    }

    /// Deterministic values in -0.5..0.5.
    fn values(n: usize, seed: &mut u32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                *seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                (*seed >> 8) as f32 / (1 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// Random weights for the layers `convs` (`[out, in, k, k]`), `dense` (`[out, in]`) and
    /// `prelus`, scaled as an initializer would (weights by 1/sqrt(fan-in), slopes around 0.25)
    /// so that activations stay in range.
    fn random_net(convs: &[(&str, [usize; 4])], dense: &[(&str, [usize; 2])], prelus: &[(&str, usize)]) -> HashMap<String, Tensor> {
        let mut shapes: Vec<(String, Vec<usize>, f32, f32)> = Vec::new();
        let layers = convs.iter().map(|(n, s)| (n, s.to_vec())).chain(dense.iter().map(|(n, s)| (n, s.to_vec())));
        for (name, shape) in layers {
            let fan_in = shape[1..].iter().product::<usize>() as f32;
            shapes.push((format!("{name}.weight"), shape.clone(), 0.0, 2.0 * 3f32.sqrt() / fan_in.sqrt()));
            shapes.push((format!("{name}.bias"), vec![shape[0]], 0.0, 0.2));
        }
        for (name, c) in prelus {
            shapes.push((format!("{name}.weight"), vec![*c], 0.25, 0.2));
        }
        let mut seed = 7;
        shapes
            .into_iter()
            .map(|(name, shape, center, spread)| {
                let v = values(shape.iter().product(), &mut seed).iter().map(|x| center + x * spread).collect();
                (name, Tensor::from_vec(v, shape, &Device::Cpu).unwrap())
            })
            .collect()
    }

    fn picture(width: u32, height: u32) -> AreaSums {
        let mut seed = 3;
        let v = values(3 * (width * height) as usize, &mut seed);
        let img = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb(std::array::from_fn(|c| ((v[3 * (y * width + x) as usize + c] + 0.5) * 255.0) as u8))
        });
        AreaSums::from_rgb(&img)
    }

    fn assert_close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-4, "{what}: direct and candle differ by {worst}");
    }

    // The direct kernels against the candle ops, network by network, on random weights: the
    // same numbers up to float rounding (tests/mtcnn.rs checks the whole cascade on LFW).
    #[test]
    fn pnet_direct_matches_candle() {
        let tensors = random_net(
            &[("conv1", [10, 3, 3, 3]), ("conv2", [16, 10, 3, 3]), ("conv3", [32, 16, 3, 3]), ("conv4_1", [2, 32, 1, 1]), ("conv4_2", [4, 32, 1, 1])],
            &[],
            &[("prelu1", 10), ("prelu2", 16), ("prelu3", 32)],
        );
        let w = Weights::from_tensors(Path::new("pnet"), tensors);
        let (direct, reference) = (PNet::new(&w, &Device::Cpu, Some(2)).unwrap(), PNet::new(&w, &Device::Cpu, None).unwrap());
        let img = picture(57, 41);
        let scales = [0.6, 0.6 * 0.709, 0.3];
        let (a, b) = (direct.pyramid(&img, &scales).unwrap(), reference.pyramid(&img, &scales).unwrap());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.width, y.width);
            assert_close(&x.prob, &y.prob, "P-Net probability");
            assert_close(&x.reg, &y.reg, "P-Net regression");
        }
    }

    fn regions() -> Vec<Region> {
        vec![
            Region { x0: 0, y0: 0, x1: 57, y1: 41 },
            Region { x0: 10, y0: 5, x1: 30, y1: 25 },
            Region { x0: 40, y0: 30, x1: 45, y1: 41 },
        ]
    }

    #[test]
    fn rnet_direct_matches_candle() {
        let tensors = random_net(
            &[("conv1", [28, 3, 3, 3]), ("conv2", [48, 28, 3, 3]), ("conv3", [64, 48, 2, 2])],
            &[("dense4", [128, 576]), ("dense5_1", [2, 128]), ("dense5_2", [4, 128])],
            &[("prelu1", 28), ("prelu2", 48), ("prelu3", 64), ("prelu4", 128)],
        );
        let w = Weights::from_tensors(Path::new("rnet"), tensors);
        let (direct, reference) = (RNet::new(&w, &Device::Cpu, Some(2)).unwrap(), RNet::new(&w, &Device::Cpu, None).unwrap());
        let img = picture(57, 41);
        let (a, b) = (direct.score(&img, &regions()).unwrap(), reference.score(&img, &regions()).unwrap());
        let flat = |v: &[(f32, [f32; 4])]| v.iter().flat_map(|(p, r)| std::iter::once(*p).chain(*r)).collect::<Vec<_>>();
        assert_close(&flat(&a), &flat(&b), "R-Net");
    }

    #[test]
    fn onet_direct_matches_candle() {
        let tensors = random_net(
            &[("conv1", [32, 3, 3, 3]), ("conv2", [64, 32, 3, 3]), ("conv3", [64, 64, 3, 3]), ("conv4", [128, 64, 2, 2])],
            &[("dense5", [256, 1152]), ("dense6_1", [2, 256]), ("dense6_2", [4, 256]), ("dense6_3", [10, 256])],
            &[("prelu1", 32), ("prelu2", 64), ("prelu3", 64), ("prelu4", 128), ("prelu5", 256)],
        );
        let w = Weights::from_tensors(Path::new("onet"), tensors);
        let (direct, reference) = (ONet::new(&w, &Device::Cpu, Some(2)).unwrap(), ONet::new(&w, &Device::Cpu, None).unwrap());
        let img = picture(57, 41);
        let (a, b) = (direct.score(&img, &regions()).unwrap(), reference.score(&img, &regions()).unwrap());
        let flat = |v: &[ONetOutput]| v.iter().flat_map(|(p, r, m)| std::iter::once(*p).chain(*r).chain(*m)).collect::<Vec<_>>();
        assert_close(&flat(&a), &flat(&b), "O-Net");
    }
}
