//! With the `cuda` feature, compiles `src/cuda_norm/kernels.cu` (fused BatchNorm and PReLU
//! kernels) to PTX with nvcc (`$NVCC`, else `nvcc` on the PATH) for the compute capability
//! in `$CUDA_COMPUTE_CAP` (default 80; the driver JIT-compiles the PTX for newer GPUs).
//! Without the feature it does nothing, so CPU builds need no CUDA toolkit.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/cuda_norm/kernels.cu");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    println!("cargo:rerun-if-env-changed=NVCC");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("cuda_norm.ptx");
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "80".into());
    let cap: String = cap.chars().filter(char::is_ascii_digit).collect();
    let nvcc = std::env::var("NVCC").unwrap_or_else(|_| "nvcc".into());
    let status = Command::new(&nvcc)
        .args(["--ptx", "-O3", "-std=c++17", &format!("--gpu-architecture=compute_{cap}")])
        .arg("src/cuda_norm/kernels.cu")
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("arcface-kernels: the `cuda` feature needs nvcc ({nvcc}): {e}"));
    assert!(status.success(), "arcface-kernels: nvcc failed on src/cuda_norm/kernels.cu ({status})");
}
