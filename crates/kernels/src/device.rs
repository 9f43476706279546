//! Device selection from a user-facing name, as the `--device` flag spells it, and the CUDA
//! memory pool setting that goes with it.

use candle::Device;

use crate::options::CudaPool;

/// `"auto"` (CUDA device 0 when compiled in and present, else CPU), `"cpu"`, `"cuda"` or
/// `"cuda:N"`; anything else is an error. With [`CudaPool::Keep`] a CUDA device gets
/// [`keep_freed_memory`].
pub fn select_device(name: &str, pool: CudaPool) -> candle::Result<Device> {
    let device = parse_device(name)?;
    if pool == CudaPool::Keep {
        keep_freed_memory(&device)?;
    }
    Ok(device)
}

fn parse_device(name: &str) -> candle::Result<Device> {
    match name.trim().to_ascii_lowercase().as_str() {
        "auto" => Device::cuda_if_available(0),
        "cpu" => Ok(Device::Cpu),
        "cuda" | "gpu" => Device::new_cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(ordinal)) => Device::new_cuda(ordinal),
            _ => candle::bail!("unknown device {name:?}: expected auto, cpu, cuda or cuda:N"),
        },
    }
}

/// Makes the CUDA driver's memory pool keep freed blocks for reuse instead of returning them
/// to the system at every synchronization (its default release threshold is 0 bytes).
///
/// candle allocates every tensor with `cuMemAllocAsync` from the device's default pool. With
/// the default threshold a training step, which reads its loss and so synchronizes, gives all
/// its activation memory back and maps it again in the next step; PyTorch's caching allocator
/// avoids the same cost by never freeing. The pool still grows only to the peak a step needs.
/// [`CudaPool::Release`] skips this call (for A/B timing). A no-op on CPU.
pub fn keep_freed_memory(device: &Device) -> candle::Result<()> {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(d) = device {
        use candle::cuda_backend::cudarc::driver::sys;
        let stream = d.cuda_stream();
        let cu_device = stream.context().cu_device();
        let check = |what: &str, r: sys::CUresult| {
            if r == sys::CUresult::CUDA_SUCCESS {
                Ok(())
            } else {
                Err(candle::Error::Msg(format!("CUDA memory pool: {what} failed: {r:?}")))
            }
        };
        let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
        let mut threshold: u64 = u64::MAX;
        // SAFETY: plain driver calls on a valid device handle; `threshold` outlives the call,
        // which copies the u64 it points to.
        unsafe {
            check("cuDeviceGetDefaultMemPool", sys::cuDeviceGetDefaultMemPool(&mut pool, cu_device))?;
            check(
                "setting its release threshold",
                sys::cuMemPoolSetAttribute(
                    pool,
                    sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                    (&mut threshold as *mut u64).cast(),
                ),
            )?;
        }
    }
    let _ = device;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert!(select_device("cpu", CudaPool::Keep).unwrap().is_cpu());
        assert!(select_device("auto", CudaPool::Keep).is_ok());
        assert!(select_device("tpu", CudaPool::Keep).is_err());
        assert!(select_device("cuda:x", CudaPool::Keep).is_err());
        // Without the `cuda` feature candle refuses CUDA instead of falling back silently.
        if !candle::utils::cuda_is_available() {
            assert!(select_device("cuda", CudaPool::Release).is_err());
        }
    }
}
