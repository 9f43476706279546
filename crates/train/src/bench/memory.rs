//! Memory probes for the bench: the process's resident memory (Linux `/proc/self/status`), its
//! page faults (`/proc/self/stat`) and the GPU memory in use as the CUDA driver sees it. Each
//! is `None` where it cannot be read.

use candle::Device;

/// Peak resident memory of this process in MB (Linux `VmHWM`).
pub fn peak_rss_mb() -> Option<f64> {
    proc_status_mb("VmHWM:")
}

/// Current resident memory of this process in MB (Linux `VmRSS`).
pub fn current_rss_mb() -> Option<f64> {
    proc_status_mb("VmRSS:")
}

/// Page faults of this process so far, minor plus major (Linux `/proc/self/stat` fields 10
/// and 12). Memory handed back to the kernel and touched again costs one per page, which is
/// what a step that allocates fresh buffers pays.
pub fn page_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name, which may itself hold spaces: state is
    // field 3, so minflt (10) and majflt (12) are at 7 and 9.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let minor: u64 = rest.get(7)?.parse().ok()?;
    let major: u64 = rest.get(9)?.parse().ok()?;
    Some(minor + major)
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

    #[test]
    fn touching_fresh_pages_counts_page_faults() {
        if cfg!(target_os = "linux") {
            let before = super::page_faults().unwrap();
            // 64 MB, past glibc's mmap threshold: fresh pages, each faulted in on first touch.
            let mut v = vec![0u8; 64 << 20];
            for i in (0..v.len()).step_by(4096) {
                v[i] = 1;
            }
            std::hint::black_box(&v);
            let after = super::page_faults().unwrap();
            assert!(after - before >= 8_000, "{before} -> {after}");
        }
    }
}
