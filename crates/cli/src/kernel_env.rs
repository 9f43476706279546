//! The one place the binary turns `ARCFACE_*` environment variables into the typed
//! [`KernelOptions`] the libraries take (they read no environment themselves). The names and
//! meanings are those the scripts and README document:
//!
//! | variable                 | effect                                                   |
//! |--------------------------|----------------------------------------------------------|
//! | `ARCFACE_CONV=candle`    | candle's own convolution instead of fastconv/cuDNN       |
//! | `ARCFACE_NORM=reference` | BatchNorm/PReLU on candle ops and autograd off CPU f32   |
//! | `ARCFACE_CUDA_KERNELS=1` | the fused CUDA BatchNorm/PReLU kernels (opt-in)          |
//! | `ARCFACE_CUDA_POOL=release` | the CUDA memory pool's default release of freed memory |
//! | `ARCFACE_PROFILE=1`      | time each layer kind (`bench --breakdown` prints it)     |
//! | `ARCFACE_MAX_ISA=avx2`   | cap the CPU kernels' vector extension (`avx512`, `avx2`, `generic`) |

use std::sync::Arc;

use arcface_kernels::{ConvKernel, CudaPool, Isa, KernelOptions, NormKernel, Profiler};

/// The options the environment asks for; unset variables keep the library defaults.
pub fn from_env() -> KernelOptions {
    from_lookup(|name| std::env::var(name).ok())
}

/// As [`from_env`], reading variables through `get` (tests pass a map).
fn from_lookup(get: impl Fn(&str) -> Option<String>) -> KernelOptions {
    let is = |name: &str, value: &str| get(name).is_some_and(|v| v.eq_ignore_ascii_case(value));
    let mut opts = KernelOptions::default();
    if is("ARCFACE_CONV", "candle") {
        opts.conv = ConvKernel::Candle;
    }
    if is("ARCFACE_NORM", "reference") {
        opts.norm = NormKernel::Reference;
    }
    opts.cuda_norm_kernels = get("ARCFACE_CUDA_KERNELS").as_deref() == Some("1");
    if is("ARCFACE_CUDA_POOL", "release") {
        opts.cuda_pool = CudaPool::Release;
    }
    if get("ARCFACE_PROFILE").as_deref() == Some("1") {
        opts.profiler = Some(Arc::new(Profiler::new()));
    }
    if let Some(v) = get("ARCFACE_MAX_ISA") {
        match [Isa::Avx512, Isa::Avx2, Isa::Generic].into_iter().find(|i| v.eq_ignore_ascii_case(i.name())) {
            Some(isa) => opts.max_isa = isa,
            None => eprintln!("warning: ARCFACE_MAX_ISA={v} is not avx512, avx2 or generic; ignored"),
        }
    }
    opts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_is_the_library_default_and_each_variable_maps() {
        let none = from_lookup(|_| None);
        let d = KernelOptions::default();
        assert_eq!((none.conv, none.norm, none.cuda_norm_kernels, none.allow_tf32), (d.conv, d.norm, false, true));
        assert!(none.profiler.is_none() && none.cuda_pool == CudaPool::Keep);
        let all = from_lookup(|n| {
            Some(String::from(match n {
                "ARCFACE_CONV" => "Candle",
                "ARCFACE_NORM" => "reference",
                "ARCFACE_CUDA_POOL" => "release",
                _ => "1",
            }))
        });
        assert_eq!((all.conv, all.norm, all.cuda_pool), (ConvKernel::Candle, NormKernel::Reference, CudaPool::Release));
        assert_eq!(none.max_isa, Isa::Avx512);
        let avx2 = from_lookup(|n| (n == "ARCFACE_MAX_ISA").then(|| "AVX2".to_string()));
        assert_eq!(avx2.max_isa, Isa::Avx2);
        assert!(all.cuda_norm_kernels && all.allow_tf32 && all.profiler.is_some());
    }
}
