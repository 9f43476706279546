//! The fused CUDA kernels of BatchNorm (training) and PReLU (`forward_cuda_kernels`,
//! `src/cuda_norm/kernels.cu`) against the CPU's fused f32 path on the same inputs: outputs,
//! running statistics and every gradient (loss `sum(y * r)`, random `r`), on shapes with
//! short and long rows, BatchNorm1d (`N x C`), one channel centred far from 0, and a frozen
//! BatchNorm scale; f32 (tolerance 1e-4 of the reference's largest value) and bf16 inputs
//! (2e-2, bf16 rounding).
//!
//! Without a CUDA device the test prints "no CUDA device, skipped" and passes, unless
//! `ARCFACE_REQUIRE_GPU=1`, where it fails (the GPU check script sets it).
#![cfg(feature = "cuda")]

mod common;
use common::cuda;

use anyhow::{ensure, Result};
#[path = "common/layers.rs"]
mod layers;
use layers::{BatchNorm, PReLU};
use candle::{DType, Device, Module, Tensor, Var};
use candle_nn::{ModuleT, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SHAPES: &[&[usize]] = &[&[4, 3, 5, 7], &[16, 8], &[2, 5, 1, 1], &[8, 16, 28, 28], &[3, 7, 300], &[128, 64, 7, 7]];


/// Uniform in [-2, 2) with channel 1 (if any) shifted by 50.
fn random(rng: &mut ChaCha8Rng, dims: &[usize]) -> Result<Tensor> {
    let len: usize = dims.iter().product();
    let inner: usize = dims[2..].iter().product();
    let c = dims[1];
    let data: Vec<f32> =
        (0..len).map(|i| rng.gen_range(-2.0f32..2.0) + if (i / inner) % c == 1 { 50.0 } else { 0.0 }).collect();
    Ok(Tensor::from_vec(data, dims, &Device::Cpu)?)
}

fn rel_err(a: &Tensor, b: &Tensor, what: &str) -> Result<f32> {
    ensure!(a.dims() == b.dims(), "{what}: shape {:?} vs {:?}", a.dims(), b.dims());
    let a = a.flatten_all()?.to_dtype(DType::F32)?.to_device(&Device::Cpu)?.to_vec1::<f32>()?;
    let b = b.flatten_all()?.to_dtype(DType::F32)?.to_device(&Device::Cpu)?.to_vec1::<f32>()?;
    ensure!(a.iter().all(|v| v.is_finite()), "{what}: non-finite values");
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    Ok(a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale)
}

/// A BatchNorm on `dev` with seeded parameters and running statistics.
fn batch_norm(c: usize, frozen: bool, dev: &Device) -> Result<(VarMap, BatchNorm)> {
    let varmap = VarMap::new();
    let bn = BatchNorm::new(c, frozen, VarBuilder::from_varmap(&varmap, DType::F32, dev))?;
    let vals = |lo: f32, step: f32| Tensor::new((0..c).map(|i| lo + step * i as f32).collect::<Vec<_>>(), dev);
    {
        let data = varmap.data().lock().unwrap();
        data["weight"].set(&vals(0.5, 0.1)?)?;
        data["bias"].set(&vals(-0.3, 0.05)?)?;
        data["running_mean"].set(&vals(-1.0, 0.2)?)?;
        data["running_var"].set(&vals(0.5, 0.1)?)?;
    }
    Ok((varmap, bn))
}

fn var(varmap: &VarMap, name: &str) -> Tensor {
    varmap.data().lock().unwrap()[name].as_tensor().clone()
}

#[test]
fn batch_norm_kernels_match_the_cpu() -> Result<()> {
    let Some(gpu) = cuda()? else { return Ok(()) };
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for dims in SHAPES {
        let (x, r) = (random(&mut rng, dims)?, random(&mut rng, dims)?);
        for (dtype, frozen, tol) in [(DType::F32, false, 1e-4), (DType::F32, true, 1e-4), (DType::BF16, false, 2e-2)] {
            // The CPU reference gets the same (rounded) inputs, in f32.
            let x = x.to_dtype(dtype)?.to_dtype(DType::F32)?;
            let (vm_c, bn_c) = batch_norm(dims[1], frozen, &Device::Cpu)?;
            let xc = Var::from_tensor(&x)?;
            let yc = bn_c.forward_t(xc.as_tensor(), true)?;
            let gc = (&yc * &r)?.sum_all()?.backward()?;
            let (vm_g, bn_g) = batch_norm(dims[1], frozen, &gpu)?;
            let xg = Var::from_tensor(&x.to_device(&gpu)?.to_dtype(dtype)?)?;
            let yg = bn_g.forward_cuda_kernels(xg.as_tensor(), true)?;
            ensure!(yg.dtype() == dtype, "output dtype {:?}", yg.dtype());
            let gg = (&yg * r.to_device(&gpu)?.to_dtype(dtype)?)?.sum_all()?.backward()?;
            let at = format!("{dims:?} {dtype:?} frozen={frozen}");
            let mut errs = vec![
                ("y", rel_err(&yg, &yc, &at)?),
                ("dx", rel_err(gg.get(xg.as_tensor()).unwrap(), gc.get(xc.as_tensor()).unwrap(), &at)?),
                ("db", rel_err(gg.get(&var(&vm_g, "bias")).unwrap(), gc.get(&var(&vm_c, "bias")).unwrap(), &at)?),
            ];
            match (gg.get(&var(&vm_g, "weight")), gc.get(&var(&vm_c, "weight"))) {
                (Some(a), Some(b)) => errs.push(("dw", rel_err(a, b, &at)?)),
                (None, None) => ensure!(frozen, "no weight gradient {at}"),
                _ => anyhow::bail!("weight gradient present on one side only {at}"),
            }
            for name in ["running_mean", "running_var"] {
                errs.push((name, rel_err(&var(&vm_g, name), &var(&vm_c, name), &at)?));
            }
            println!("batch-norm {at}: {errs:?}");
            for (what, e) in errs {
                ensure!(e <= tol, "batch-norm {what} {at}: relative error {e} > {tol}");
            }
        }
    }
    Ok(())
}

#[test]
fn prelu_kernels_match_the_cpu() -> Result<()> {
    let Some(gpu) = cuda()? else { return Ok(()) };
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    for dims in SHAPES {
        let (x, r) = (random(&mut rng, dims)?, random(&mut rng, dims)?);
        let x = (x - 1.0)?; // both signs in every channel, also the shifted one
        let w: Vec<f32> = (0..dims[1]).map(|i| 0.25 - 0.05 * i as f32).collect();
        for (dtype, tol) in [(DType::F32, 1e-5), (DType::BF16, 2e-2)] {
            let x = x.to_dtype(dtype)?.to_dtype(DType::F32)?;
            let wc = Var::from_tensor(&Tensor::new(w.as_slice(), &Device::Cpu)?)?;
            let xc = Var::from_tensor(&x)?;
            let yc = PReLU::new(wc.as_tensor().clone()).forward(xc.as_tensor())?;
            let gc = (&yc * &r)?.sum_all()?.backward()?;
            let wg = Var::from_tensor(&Tensor::new(w.as_slice(), &gpu)?.to_dtype(dtype)?)?;
            let xg = Var::from_tensor(&x.to_device(&gpu)?.to_dtype(dtype)?)?;
            let yg = PReLU::new(wg.as_tensor().clone()).forward_cuda_kernels(xg.as_tensor())?;
            let gg = (&yg * r.to_device(&gpu)?.to_dtype(dtype)?)?.sum_all()?.backward()?;
            let at = format!("{dims:?} {dtype:?}");
            let errs = [
                ("y", rel_err(&yg, &yc, &at)?),
                ("dx", rel_err(gg.get(xg.as_tensor()).unwrap(), gc.get(xc.as_tensor()).unwrap(), &at)?),
                ("dw", rel_err(gg.get(wg.as_tensor()).unwrap(), gc.get(wc.as_tensor()).unwrap(), &at)?),
            ];
            println!("prelu {at}: {errs:?}");
            for (what, e) in errs {
                ensure!(e <= tol, "prelu {what} {at}: relative error {e} > {tol}");
            }
        }
    }
    Ok(())
}
