//! `cudnn_conv::conv2d` on a CUDA device against `fastconv::conv2d` on the CPU: forward
//! output and, through candle's autograd (`Var` + `backward` of `sum(y * r)` with a random
//! `r`), the input and weight gradients, on seeded random shapes. f32 runs with TF32 off
//! (tolerance 1e-4 of the reference's largest magnitude) and on (5e-3), bf16 and f16 with
//! loose tolerances against the CPU result of the same rounded inputs.
//!
//! Without a CUDA device the GPU test prints "no CUDA device, skipped" and passes, unless
//! `ARCFACE_REQUIRE_GPU=1`, where it fails (the GPU check script sets it).
#![cfg(feature = "cudnn")]

mod common;
use common::{cuda, random, rel_err};

use arcface_kernels::{cudnn_conv, fastconv, KernelOptions};
use candle::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;


/// One case: x is (n, c, h, w), the kernel (k, c, kernel, kernel).
#[derive(Debug, Clone, Copy)]
struct Case {
    x: [usize; 4],
    k: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
}

/// IResNet's own shapes (3x3 same-size, 3x3 stride-2, 1x1 stride-2 downsample), then random
/// ones over the ranges the model's layers span at small scale.
fn cases() -> Vec<Case> {
    let mut v = vec![
        Case {
            x: [2, 64, 28, 28],
            k: 64,
            kernel: 3,
            stride: 1,
            pad: 1,
        },
        Case {
            x: [2, 64, 28, 28],
            k: 128,
            kernel: 3,
            stride: 2,
            pad: 1,
        },
        Case {
            x: [2, 64, 28, 28],
            k: 128,
            kernel: 1,
            stride: 2,
            pad: 0,
        },
        Case {
            x: [1, 3, 12, 9],
            k: 8,
            kernel: 3,
            stride: 2,
            pad: 0,
        },
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    while v.len() < 24 {
        let kernel = [1, 3][rng.gen_range(0..2)];
        v.push(Case {
            x: [
                rng.gen_range(1..=4),
                rng.gen_range(1..=64),
                rng.gen_range(5..=28),
                rng.gen_range(5..=28),
            ],
            k: rng.gen_range(1..=64),
            kernel,
            stride: rng.gen_range(1..=2),
            pad: rng.gen_range(0..=1),
        });
    }
    v
}

/// y, dx, dw of `conv` on x, w with upstream gradient r (all already on their device).
fn run(
    x: &Tensor,
    w: &Tensor,
    r: &Tensor,
    conv: impl Fn(&Tensor, &Tensor) -> candle::Result<Tensor>,
) -> anyhow::Result<[Tensor; 3]> {
    let (x, w) = (Var::from_tensor(x)?, Var::from_tensor(w)?);
    let y = conv(x.as_tensor(), w.as_tensor())?;
    let grads = (&y * r)?.sum_all()?.backward()?;
    let dx = grads
        .get(x.as_tensor())
        .ok_or_else(|| anyhow::anyhow!("no dx"))?
        .clone();
    let dw = grads
        .get(w.as_tensor())
        .ok_or_else(|| anyhow::anyhow!("no dw"))?
        .clone();
    Ok([y, dx, dw])
}

/// Compares the three results of one case in `dtype` on `dev` with the CPU f32 reference
/// of the same inputs rounded to `dtype`; returns the worst relative error.
fn check(case: Case, dtype: DType, tf32: bool, dev: &Device, rng: &mut ChaCha8Rng) -> anyhow::Result<f32> {
    let opts = KernelOptions { allow_tf32: tf32, ..KernelOptions::default() };
    let [n, c, h, wd] = case.x;
    let (s, p) = (case.stride, case.pad);
    let round =
        |t: Tensor| -> anyhow::Result<Tensor> { Ok(t.to_dtype(dtype)?.to_dtype(DType::F32)?) };
    let x = round(random(rng, &case.x)?)?;
    let w = round(random(rng, &[case.k, c, case.kernel, case.kernel])?)?;
    let (ho, wo) = (
        (h + 2 * p - case.kernel) / s + 1,
        (wd + 2 * p - case.kernel) / s + 1,
    );
    let r = round(random(rng, &[n, case.k, ho, wo])?)?;
    let want = run(&x, &w, &r, |x, w| fastconv::conv2d(x, w, s, p, &KernelOptions::default()))?;
    let on_dev = |t: &Tensor| t.to_device(dev)?.to_dtype(dtype);
    let got = run(&on_dev(&x)?, &on_dev(&w)?, &on_dev(&r)?, |x, w| {
        cudnn_conv::conv2d(x, w, s, p, &opts)
    })?;
    let mut worst = 0f32;
    for (name, (g, e)) in ["y", "dx", "dw"].iter().zip(got.iter().zip(&want)) {
        anyhow::ensure!(
            g.dtype() == dtype && g.device().is_cuda(),
            "{name} is {:?} on {:?}",
            g.dtype(),
            g.device()
        );
        let err = rel_err(&g.to_device(&Device::Cpu)?, e)?;
        println!("{dtype:?} {case:?} {name}: rel err {err:.2e}");
        worst = worst.max(err);
    }
    Ok(worst)
}

fn check_all(dtype: DType, tf32: bool, tol: f32, dev: &Device) -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(80 + dtype.size_in_bytes() as u64);
    for case in cases() {
        let err = check(case, dtype, tf32, dev, &mut rng)?;
        anyhow::ensure!(
            err <= tol,
            "{dtype:?} (tf32 {tf32}) {case:?}: rel err {err:.2e} > {tol:.0e}"
        );
    }
    Ok(())
}

/// One test for all four configurations, so that a GPU run prints them in order.
#[test]
fn cudnn_conv_matches_cpu() -> anyhow::Result<()> {
    let Some(dev) = cuda()? else { return Ok(()) };
    check_all(DType::F32, false, 1e-4, &dev)?;
    check_all(DType::F32, true, 5e-3, &dev)?;
    check_all(DType::BF16, true, 2e-2, &dev)?;
    check_all(DType::F16, true, 5e-3, &dev)?;
    Ok(())
}

/// CPU tensors are refused with an error rather than sent to another kernel.
#[test]
fn cpu_tensors_are_refused() -> anyhow::Result<()> {
    let x = Tensor::zeros((1, 2, 5, 5), DType::F32, &Device::Cpu)?;
    let w = Tensor::zeros((3, 2, 3, 3), DType::F32, &Device::Cpu)?;
    assert!(!cudnn_conv::supports(&x, &w));
    let err = cudnn_conv::conv2d(&x, &w, 1, 1, &KernelOptions::default()).expect_err("CPU tensors must be refused");
    assert!(err.to_string().contains("CUDA"), "{err}");
    Ok(())
}

/// Shape errors are reported before anything runs, on any device.
#[test]
fn bad_shapes_are_refused() -> anyhow::Result<()> {
    let Some(dev) = cuda()? else { return Ok(()) };
    let x = Tensor::zeros((1, 2, 5, 5), DType::F32, &dev)?;
    let w = Tensor::zeros((3, 4, 3, 3), DType::F32, &dev)?;
    let err = cudnn_conv::conv2d(&x, &w, 1, 1, &KernelOptions::default()).expect_err("channel mismatch must fail");
    assert!(err.to_string().contains("channels"), "{err}");
    Ok(())
}
