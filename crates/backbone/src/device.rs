//! Device selection from a user-facing name, as the `--device` flag spells it.

use candle::Device;

/// `"auto"` (CUDA device 0 when compiled in and present, else CPU), `"cpu"`, `"cuda"` or
/// `"cuda:N"`; anything else is an error.
pub fn select_device(name: &str) -> candle::Result<Device> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert!(select_device("cpu").unwrap().is_cpu());
        assert!(select_device("auto").is_ok());
        assert!(select_device("tpu").is_err());
        assert!(select_device("cuda:x").is_err());
        // Without the `cuda` feature candle refuses CUDA instead of falling back silently.
        if !candle::utils::cuda_is_available() {
            assert!(select_device("cuda").is_err());
        }
    }
}
