//! Memory probes for the bench: the process's resident memory (Linux `/proc/self/status`) and
//! the GPU memory in use as the CUDA driver sees it. Each is `None` where it cannot be read.

use candle::Device;

/// Peak resident memory of this process in MB (Linux `VmHWM`).
pub fn peak_rss_mb() -> Option<f64> {
    proc_status_mb("VmHWM:")
}

/// Current resident memory of this process in MB (Linux `VmRSS`).
pub fn current_rss_mb() -> Option<f64> {
    proc_status_mb("VmRSS:")
}

/// Physical memory of this machine in MB (Linux `MemTotal`).
pub fn total_memory_mb() -> Option<f64> {
    proc_mb("/proc/meminfo", "MemTotal:")
}

fn proc_status_mb(key: &str) -> Option<f64> {
    proc_mb("/proc/self/status", key)
}

fn proc_mb(file: &str, key: &str) -> Option<f64> {
    let status = std::fs::read_to_string(file).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// GPU memory in use in MB, the driver's view (the CUDA context and candle's cached blocks
/// included, like `nvidia-smi`), sampled after a synchronize; `None` off CUDA.
#[cfg(feature = "cuda")]
pub fn cuda_used_mb(device: &Device) -> Option<f64> {
    if !device.is_cuda() {
        return None;
    }
    let (free, total) = candle::cuda_backend::cudarc::driver::result::mem_get_info().ok()?;
    Some(total.saturating_sub(free) as f64 / 1e6)
}

/// GPU memory in use: always `None` without the `cuda` feature.
#[cfg(not(feature = "cuda"))]
pub fn cuda_used_mb(_: &Device) -> Option<f64> {
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn resident_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            let (now, peak) = (super::current_rss_mb().unwrap(), super::peak_rss_mb().unwrap());
            assert!(now > 0.0 && peak >= now, "{now} {peak}");
            assert!(super::total_memory_mb().unwrap() > peak);
        }
    }
}
