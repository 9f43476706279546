//! The fused CPU kernels of BatchNorm (training mode) and PReLU against their candle-op
//! reference paths run in f64: outputs, running statistics and every gradient, on shapes
//! covering BatchNorm1d (`N x C`), `L = 1`, odd sizes, a single sample, and a channel whose
//! mean is far larger than its spread. Also the frozen BN scale and bf16 inputs. The same
//! checks cover the closed-form-gradient path that CUDA takes (`forward_closed_grad`), run
//! here on the CPU.

use anyhow::Result;
#[path = "common/layers.rs"]
mod layers;
use layers::{BatchNorm, PReLU};
use candle::{DType, Device, Module, Tensor, Var};
use candle_nn::{ModuleT, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SHAPES: &[&[usize]] = &[
    &[4, 3, 5, 7],
    &[16, 8],
    &[2, 5, 1, 1],
    &[3, 2, 9],
    &[1, 4, 3, 3],
    &[7, 6, 1, 13],
    &[64, 16, 12, 12],
];

/// Values in `[-scale, scale)` plus a small per-channel offset, so every channel has both
/// signs; channel 1 is shifted to 100 instead, to test the variance's robustness.
fn random(dims: &[usize], scale: f32, seed: u64) -> Result<Tensor> {
    random_shifted(dims, scale, seed, 100.0)
}

/// As [`random`] with channel 1 shifted to `far`.
fn random_shifted(dims: &[usize], scale: f32, seed: u64, far: f32) -> Result<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let c = dims.get(1).copied().unwrap_or(1);
    let per_channel: usize = dims[2..].iter().product();
    let n: usize = dims.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| {
            let ch = (i / per_channel) % c;
            let offset = if ch == 1 { far } else { 0.3 * ch as f32 - 0.5 };
            rng.gen_range(-scale..scale) + offset
        })
        .collect();
    Ok(Tensor::from_vec(v, dims, &Device::Cpu)?)
}

/// A uniform vector of `c` values in `[lo, hi)`.
fn uniform(c: usize, lo: f32, hi: f32, seed: u64) -> Result<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let v: Vec<f32> = (0..c).map(|_| rng.gen_range(lo..hi)).collect();
    Ok(Tensor::from_vec(v, c, &Device::Cpu)?)
}

/// `max |got - want| <= tol * max(1, max |want|)`, both read as f64.
fn assert_close(got: &Tensor, want: &Tensor, tol: f64, what: &str) -> Result<()> {
    assert_eq!(got.dims(), want.dims(), "{what}: shapes differ");
    let g = got.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    let w = want.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    assert!(g.iter().all(|v| v.is_finite()), "{what}: non-finite values");
    let scale = w.iter().fold(1f64, |m, v| m.max(v.abs()));
    let diff = g
        .iter()
        .zip(&w)
        .fold(0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        diff <= tol * scale,
        "{what}: max diff {diff} > {tol} * {scale}"
    );
    Ok(())
}

/// A BatchNorm of `c` channels over a fresh f32 VarMap holding the given weight, bias and
/// running statistics.
fn batch_norm(c: usize, frozen: bool, seed: u64, dtype: DType) -> Result<(VarMap, BatchNorm)> {
    let varmap = VarMap::new();
    let bn = BatchNorm::new(
        c,
        frozen,
        VarBuilder::from_varmap(&varmap, dtype, &Device::Cpu),
    )?;
    {
        let data = varmap.data().lock().unwrap();
        data["weight"].set(&uniform(c, 0.5, 1.5, seed)?.to_dtype(dtype)?)?;
        data["bias"].set(&uniform(c, -0.5, 0.5, seed + 1)?.to_dtype(dtype)?)?;
        data["running_mean"].set(&uniform(c, -1.0, 1.0, seed + 2)?.to_dtype(dtype)?)?;
        data["running_var"].set(&uniform(c, 0.5, 2.0, seed + 3)?.to_dtype(dtype)?)?;
    }
    Ok((varmap, bn))
}

fn var(varmap: &VarMap, name: &str) -> Tensor {
    varmap.data().lock().unwrap()[name].as_tensor().clone()
}

/// Which implementation a step runs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// `forward_t`/`forward`: the fused kernels for CPU f32.
    Fused,
    /// candle ops and autograd.
    Reference,
    /// candle ops forward, closed-form backward (the CUDA path).
    ClosedGrad,
}

/// One train-mode forward of `x` (cast to `dtype`) with loss `sum(y * g)`: the output and the
/// gradients of x, weight and bias (`None` where there is none).
fn bn_step(
    varmap: &VarMap,
    bn: &BatchNorm,
    x: &Tensor,
    g: &Tensor,
    dtype: DType,
    mode: Mode,
) -> Result<(Tensor, Tensor, Option<Tensor>, Option<Tensor>)> {
    let x = Var::from_tensor(&x.to_dtype(dtype)?)?;
    let y = match mode {
        Mode::Fused => bn.forward_t(x.as_tensor(), true)?,
        Mode::Reference => bn.forward_reference(x.as_tensor(), true)?,
        Mode::ClosedGrad => bn.forward_closed_grad(x.as_tensor(), true)?,
    };
    let grads = (&y * g.to_dtype(dtype)?)?.sum_all()?.backward()?;
    let dx = grads.get(x.as_tensor()).expect("x has a gradient").clone();
    let dw = grads.get(&var(varmap, "weight")).cloned();
    let db = grads.get(&var(varmap, "bias")).cloned();
    Ok((y, dx, dw, db))
}

fn check_bn(dims: &[usize], frozen: bool, seed: u64) -> Result<()> {
    check_bn_mode(dims, frozen, seed, Mode::Fused)?;
    check_bn_mode(dims, frozen, seed, Mode::ClosedGrad)
}

fn check_bn_mode(dims: &[usize], frozen: bool, seed: u64, mode: Mode) -> Result<()> {
    let c = dims[1];
    let x = random(dims, 2.0, seed)?;
    let g = random(dims, 1.0, seed + 10)?;
    let (vm_f, bn_f) = batch_norm(c, frozen, seed, DType::F32)?;
    let (vm_r, bn_r) = batch_norm(c, frozen, seed, DType::F32)?;
    let (y_f, dx_f, dw_f, db_f) = bn_step(&vm_f, &bn_f, &x, &g, DType::F32, mode)?;
    let (y_r, dx_r, dw_r, db_r) = bn_step(&vm_r, &bn_r, &x, &g, DType::F64, Mode::Reference)?;
    let at = format!("{mode:?} {dims:?} frozen={frozen}");
    // Both f32 paths stay within 1e-5 of the f64 reference, also on the channel centred at
    // 100 (input and gradient): candle's own f32 autograd is off by up to 8.7e-3 there.
    let tol = 1e-5;
    assert_close(&y_f, &y_r, tol, &format!("y {at}"))?;
    assert_close(&dx_f, &dx_r, tol, &format!("dx {at}"))?;
    assert_close(
        db_f.as_ref().expect("bias grad"),
        db_r.as_ref().expect("bias grad"),
        tol,
        &format!("db {at}"),
    )?;
    assert_eq!(dw_f.is_some(), !frozen, "weight grad presence {at}");
    assert_eq!(
        dw_r.is_some(),
        !frozen,
        "reference weight grad presence {at}"
    );
    if let (Some(a), Some(b)) = (dw_f, dw_r) {
        assert_close(&a, &b, tol, &format!("dw {at}"))?;
    }
    for name in ["running_mean", "running_var"] {
        assert_close(
            &var(&vm_f, name),
            &var(&vm_r, name),
            1e-6,
            &format!("{name} {at}"),
        )?;
    }
    Ok(())
}

#[test]
fn batch_norm_fused_matches_reference() -> Result<()> {
    for (i, dims) in SHAPES.iter().enumerate() {
        check_bn(dims, false, 100 * i as u64)?;
    }
    Ok(())
}

#[test]
fn batch_norm_fused_with_frozen_weight() -> Result<()> {
    check_bn(&[8, 6, 3, 3], true, 7)?;
    check_bn(&[32, 12], true, 8)
}

/// Two steps in a row: the second one starts from the running statistics the first wrote.
#[test]
fn batch_norm_running_stats_accumulate_like_reference() -> Result<()> {
    let (vm_f, bn_f) = batch_norm(5, false, 3, DType::F32)?;
    let (vm_r, bn_r) = batch_norm(5, false, 3, DType::F32)?;
    let (vm_c, bn_c) = batch_norm(5, false, 3, DType::F32)?;
    for step in 0..2 {
        let x = random(&[6, 5, 4, 3], 1.5, 40 + step)?;
        bn_f.forward_t(&x, true)?;
        bn_r.forward_reference(&x, true)?;
        bn_c.forward_closed_grad(&x, true)?;
    }
    for name in ["running_mean", "running_var"] {
        assert_close(&var(&vm_f, name), &var(&vm_r, name), 1e-6, name)?;
        assert_close(&var(&vm_c, name), &var(&vm_r, name), 1e-6, name)?;
    }
    Ok(())
}

#[test]
fn batch_norm_rejects_a_single_value_per_channel() -> Result<()> {
    let (_vm, bn) = batch_norm(3, false, 1, DType::F32)?;
    assert!(bn.forward_t(&random(&[1, 3], 1.0, 0)?, true).is_err());
    assert!(
        bn.forward_t(&random(&[2, 4, 3], 1.0, 0)?, true).is_err(),
        "channel mismatch"
    );
    Ok(())
}

/// bf16 activations (with f32 or bf16 parameters) are normalized in f32: the output and the
/// running statistics stay within bf16 rounding of the f32 run's. (No channel near 100
/// here: bf16's spacing there is 0.5, which no normalization could undo.)
#[test]
fn batch_norm_accepts_bf16() -> Result<()> {
    let dims = [8, 4, 5, 5];
    let x = random_shifted(&dims, 2.0, 5, 1.0)?;
    let g = random_shifted(&dims, 1.0, 6, 1.0)?;
    let (vm32, bn32) = batch_norm(4, false, 9, DType::F32)?;
    let (y32, dx32, _, _) = bn_step(&vm32, &bn32, &x, &g, DType::F32, Mode::Fused)?;
    for (param_dtype, mode) in [
        (DType::F32, Mode::Fused),
        (DType::BF16, Mode::Fused),
        (DType::F32, Mode::ClosedGrad),
        (DType::BF16, Mode::ClosedGrad),
    ] {
        let (vm, bn) = batch_norm(4, false, 9, param_dtype)?;
        let (y, dx, dw, db) = bn_step(&vm, &bn, &x, &g, DType::BF16, mode)?;
        assert_eq!(y.dtype(), DType::BF16);
        assert_eq!(dw.map(|t| t.dtype()), Some(param_dtype));
        assert_eq!(db.map(|t| t.dtype()), Some(param_dtype));
        assert_close(&y, &y32, 3e-2, "bf16 output")?;
        assert_close(&dx, &dx32, 5e-2, "bf16 input gradient")?;
        assert_close(
            &var(&vm, "running_mean"),
            &var(&vm32, "running_mean"),
            1e-2,
            "bf16 running mean",
        )?;
        assert_close(
            &var(&vm, "running_var"),
            &var(&vm32, "running_var"),
            1e-2,
            "bf16 running var",
        )?;
    }
    Ok(())
}

/// One forward of PReLU with loss `sum(y * g)` in `dtype`: output, dx and dw.
fn prelu_step(
    x: &Tensor,
    w: &Tensor,
    g: &Tensor,
    dtype: DType,
    mode: Mode,
) -> Result<(Tensor, Tensor, Tensor)> {
    let x = Var::from_tensor(&x.to_dtype(dtype)?)?;
    let w = Var::from_tensor(&w.to_dtype(dtype)?)?;
    let prelu = PReLU::new(w.as_tensor().clone());
    let y = match mode {
        Mode::Fused => prelu.forward(x.as_tensor())?,
        Mode::Reference => prelu.forward_reference(x.as_tensor())?,
        Mode::ClosedGrad => prelu.forward_closed_grad(x.as_tensor())?,
    };
    let grads = (&y * g.to_dtype(dtype)?)?.sum_all()?.backward()?;
    let dx = grads.get(x.as_tensor()).expect("x has a gradient").clone();
    let dw = grads.get(w.as_tensor()).expect("w has a gradient").clone();
    Ok((y, dx, dw))
}

#[test]
fn prelu_fused_matches_reference() -> Result<()> {
    for (i, dims) in SHAPES.iter().enumerate() {
        let seed = 1000 + 100 * i as u64;
        let x = random(dims, 2.0, seed)?;
        let w = uniform(dims[1], -0.5, 0.9, seed + 1)?;
        let g = random(dims, 1.0, seed + 2)?;
        let (y_r, dx_r, dw_r) = prelu_step(&x, &w, &g, DType::F64, Mode::Reference)?;
        for mode in [Mode::Fused, Mode::ClosedGrad] {
            let (y_f, dx_f, dw_f) = prelu_step(&x, &w, &g, DType::F32, mode)?;
            assert_close(&y_f, &y_r, 1e-6, &format!("prelu y {mode:?} {dims:?}"))?;
            assert_close(&dx_f, &dx_r, 1e-6, &format!("prelu dx {mode:?} {dims:?}"))?;
            assert_close(&dw_f, &dw_r, 1e-5, &format!("prelu dw {mode:?} {dims:?}"))?;
        }
    }
    Ok(())
}

/// Hand values: slopes 0.25 and -1; dw sums `dy * x` over the non-positive inputs only.
#[test]
fn prelu_hand_values() -> Result<()> {
    let x = Tensor::new(
        &[[[2f32, -4.], [-1., 3.]], [[-2., 0.5], [0., -3.]]],
        &Device::Cpu,
    )?;
    let w = Tensor::new(&[0.25f32, -1.], &Device::Cpu)?;
    let g = Tensor::new(
        &[[[1f32, 2.], [3., 4.]], [[5., 6.], [7., 8.]]],
        &Device::Cpu,
    )?;
    for mode in [Mode::Fused, Mode::ClosedGrad] {
        let (y, dx, dw) = prelu_step(&x, &w, &g, DType::F32, mode)?;
        assert_eq!(
            y.to_vec3::<f32>()?,
            vec![
                vec![vec![2., -1.], vec![1., 3.]],
                vec![vec![-0.5, 0.5], vec![0., 3.]]
            ]
        );
        assert_eq!(
            dx.to_vec3::<f32>()?,
            vec![
                vec![vec![1., 0.5], vec![-3., 4.]],
                vec![vec![1.25, 6.], vec![-7., -8.]]
            ]
        );
        // Channel 0: 2 * -4 + 5 * -2 = -18; channel 1: 3 * -1 + 7 * 0 + 8 * -3 = -27.
        assert_eq!(dw.to_vec1::<f32>()?, vec![-18., -27.]);
    }
    Ok(())
}

#[test]
fn prelu_accepts_bf16_and_checks_channels() -> Result<()> {
    let dims = [4, 3, 6, 6];
    let x = random(&dims, 2.0, 77)?;
    let w = uniform(3, 0.0, 0.5, 78)?;
    let g = random(&dims, 1.0, 79)?;
    let (y32, dx32, dw32) = prelu_step(&x, &w, &g, DType::F32, Mode::Fused)?;
    for mode in [Mode::Fused, Mode::ClosedGrad] {
        let (y, dx, dw) = prelu_step(&x, &w, &g, DType::BF16, mode)?;
        assert_eq!((y.dtype(), dw.dtype()), (DType::BF16, DType::BF16));
        assert_close(&y, &y32, 1e-2, &format!("bf16 prelu y {mode:?}"))?;
        assert_close(&dx, &dx32, 1e-2, &format!("bf16 prelu dx {mode:?}"))?;
        assert_close(&dw, &dw32, 2e-2, &format!("bf16 prelu dw {mode:?}"))?;
    }
    let prelu = PReLU::new(w);
    assert!(prelu.forward(&random(&[2, 4, 3], 1.0, 0)?).is_err());
    assert!(prelu
        .forward(&Tensor::zeros(3, DType::F32, &Device::Cpu)?)
        .is_err());
    Ok(())
}

/// The closed-form BatchNorm backward is the reference's gradient, not an approximation: in
/// f64 both agree to rounding on every shape (the f32 tolerance above is only summation error).
#[test]
fn batch_norm_closed_grad_equals_autograd_in_f64() -> Result<()> {
    for (i, dims) in SHAPES.iter().enumerate() {
        let seed = 500 + i as u64;
        let (x, g) = (random(dims, 2.0, seed)?, random(dims, 1.0, seed + 1)?);
        let (vm_c, bn_c) = batch_norm(dims[1], false, seed, DType::F64)?;
        let (vm_r, bn_r) = batch_norm(dims[1], false, seed, DType::F64)?;
        let c = bn_step(&vm_c, &bn_c, &x, &g, DType::F64, Mode::ClosedGrad)?;
        let r = bn_step(&vm_r, &bn_r, &x, &g, DType::F64, Mode::Reference)?;
        assert_close(&c.0, &r.0, 1e-8, &format!("f64 y {dims:?}"))?;
        assert_close(&c.1, &r.1, 1e-8, &format!("f64 dx {dims:?}"))?;
        assert_close(
            &c.2.unwrap(),
            &r.2.unwrap(),
            1e-8,
            &format!("f64 dw {dims:?}"),
        )?;
        assert_close(
            &c.3.unwrap(),
            &r.3.unwrap(),
            1e-8,
            &format!("f64 db {dims:?}"),
        )?;
    }
    Ok(())
}
