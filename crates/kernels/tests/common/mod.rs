//! Shared by the kernel tests: the CUDA device of the GPU tests (`cudnn_conv.rs`,
//! `cuda_norm.rs`) and the comparison helpers of the convolution tests. Each test binary uses
//! a part of it.
#![allow(dead_code)]

use candle::{DType, Device, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Max |a - b| over max |b|: the tolerance is relative to the reference's scale; non-finite
/// values in `a` are an error.
pub fn rel_err(a: &Tensor, b: &Tensor) -> anyhow::Result<f32> {
    anyhow::ensure!(a.dims() == b.dims(), "shape {:?} vs {:?}", a.dims(), b.dims());
    let a = a.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    let b = b.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    anyhow::ensure!(a.iter().all(|v| v.is_finite()), "non-finite values");
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    let diff = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    Ok(diff / scale)
}

/// A CPU f32 tensor of uniform values in [-1, 1).
pub fn random(rng: &mut ChaCha8Rng, dims: &[usize]) -> anyhow::Result<Tensor> {
    let len = dims.iter().product();
    let data: Vec<f32> = (0..len).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    Ok(Tensor::from_vec(data, dims, &Device::Cpu)?)
}

/// The CUDA device, or `None` (the test prints "no CUDA device, skipped" and passes) when
/// there is none, unless `ARCFACE_REQUIRE_GPU=1` (the GPU check script sets it): then an error.
pub fn cuda() -> anyhow::Result<Option<Device>> {
    match Device::new_cuda(0) {
        Ok(d) => Ok(Some(d)),
        Err(e) if std::env::var("ARCFACE_REQUIRE_GPU").as_deref() == Ok("1") => {
            anyhow::bail!("ARCFACE_REQUIRE_GPU=1 but no CUDA device: {e}")
        }
        Err(_) => {
            println!("no CUDA device, skipped");
            Ok(None)
        }
    }
}
