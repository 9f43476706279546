//! Shared by the GPU tests (`cudnn_conv.rs`, `cuda_norm.rs`).

use candle::Device;

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
