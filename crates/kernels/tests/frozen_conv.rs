//! `FrozenConv` (Winograd F(2x2, 3x3) for 3x3 stride-1 kernels, `fastconv` for the rest)
//! against candle's own `conv2d` on IResNet's layer shapes, in pools of 1, 2 and 3 threads.

mod common;
use common::{random, rel_err};

use arcface_kernels::{ConvKernel, Epilogue, FrozenConv, Isa, KernelOptions};
use candle::{DType, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn iresnet_shapes_match_candle_on_any_thread_count() -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    // (x dims, k, kernel, stride, pad, winograd expected)
    let cases = [
        ([1, 3, 28, 28], 16, 3, 1, 1, false),
        ([1, 8, 28, 28], 16, 3, 1, 1, true),
        ([1, 32, 56, 56], 32, 3, 1, 1, true),
        ([1, 64, 14, 14], 64, 3, 1, 1, true),
        ([2, 128, 7, 7], 96, 3, 1, 1, true),
        ([3, 8, 9, 6], 5, 3, 1, 0, true),
        ([1, 9, 5, 5], 3, 3, 1, 2, true),
        // Not Winograd: an RGB stem, the stride-2 conv and the 1x1 shortcut.
        ([1, 16, 14, 14], 32, 3, 2, 1, false),
        ([1, 16, 14, 14], 32, 1, 2, 0, false),
    ];
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        for (x_dims, k, ks, stride, pad, winograd) in cases {
            let x = random(&mut rng, &x_dims)?;
            let w = random(&mut rng, &[k, x_dims[1], ks, ks])?;
            let frozen = FrozenConv::new(&w, stride, pad, Epilogue::default(), &KernelOptions::default())?;
            assert_eq!(
                frozen.is_winograd(),
                winograd,
                "{x_dims:?} k{k} {ks}x{ks} s{stride}"
            );
            let got = pool.install(|| frozen.forward(&x, &KernelOptions::default()))?;
            let want = x.conv2d(&w, pad, stride, 1, 1)?;
            let e = rel_err(&got, &want)?;
            anyhow::ensure!(
                e < 1e-5,
                "{x_dims:?} k{k} {ks}x{ks} s{stride} p{pad}, {threads} threads: rel err {e}"
            );
        }
    }
    Ok(())
}

/// Each build of the transforms the CPU can run (AVX-512, AVX2, generic), chosen with
/// `max_isa`, in the inference op and in the training op's forward and input gradient.
#[test]
fn every_isa_build_matches_candle() -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(24);
    let levels = Isa::available();
    assert_eq!(levels.last(), Some(&Isa::detected()));
    for ([n, c, h, w_], k, pad) in [([2, 16, 13, 10], 24, 1), ([1, 8, 28, 28], 16, 1), ([1, 9, 6, 7], 5, 0)] {
        let x = random(&mut rng, &[n, c, h, w_])?;
        let w = random(&mut rng, &[k, c, 3, 3])?;
        let want = x.conv2d(&w, pad, 1, 1, 1)?;
        let xv = Var::from_tensor(&x)?;
        let want_dx = xv.as_tensor().conv2d(&w, pad, 1, 1, 1)?.sqr()?.sum_all()?.backward()?;
        let want_dx = want_dx.get(&xv).expect("dx").clone();
        for &isa in &levels {
            let opts = KernelOptions { max_isa: isa, ..Default::default() };
            let frozen = FrozenConv::new(&w, 1, pad, Epilogue::default(), &opts)?;
            assert!(frozen.is_winograd());
            let e = rel_err(&frozen.forward(&x, &opts)?, &want)?;
            anyhow::ensure!(e < 1e-5, "{isa:?} frozen {:?}: rel err {e}", x.dims());
            let y = arcface_kernels::conv2d(xv.as_tensor(), &w, 1, pad, &opts)?;
            anyhow::ensure!(rel_err(&y, &want)? < 1e-5, "{isa:?} fastconv forward");
            let dx = y.sqr()?.sum_all()?.backward()?;
            let e = rel_err(dx.get(&xv).expect("dx"), &want_dx)?;
            anyhow::ensure!(e < 1e-4, "{isa:?} fastconv input gradient: rel err {e}");
        }
    }
    Ok(())
}

#[test]
fn the_kernel_is_a_snapshot_and_the_output_has_no_graph() -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    let x = random(&mut rng, &[1, 8, 8, 8])?;
    let w = Var::from_tensor(&random(&mut rng, &[6, 8, 3, 3])?)?;
    let frozen = FrozenConv::new(w.as_tensor(), 1, 1, Epilogue::default(), &KernelOptions::default())?;
    let before = frozen.forward(&x, &KernelOptions::default())?;
    assert!(!before.track_op());
    // An optimizer step (in place) on the original does not reach the frozen copy.
    w.set(&w.as_tensor().affine(2.0, 1.0)?)?;
    let after = frozen.forward(&x, &KernelOptions::default())?;
    assert_eq!(rel_err(&after, &before)?, 0.0);
    assert!(rel_err(&after, &x.conv2d(w.as_tensor(), 1, 1, 1, 1)?)? > 0.1);
    Ok(())
}

#[test]
fn other_choices_and_dtypes_skip_winograd() -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    let w = random(&mut rng, &[6, 8, 3, 3])?;
    let candle_conv = KernelOptions {
        conv: ConvKernel::Candle,
        ..Default::default()
    };
    assert!(!FrozenConv::new(&w, 1, 1, Epilogue::default(), &candle_conv)?.is_winograd());
    let w64 = w.to_dtype(DType::F64)?;
    let frozen = FrozenConv::new(&w64, 1, 1, Epilogue::default(), &KernelOptions::default())?;
    assert!(!frozen.is_winograd());
    let x = random(&mut rng, &[1, 8, 6, 6])?.to_dtype(DType::F64)?;
    let got = frozen.forward(&x, &KernelOptions::default())?;
    assert_eq!(got.dtype(), DType::F64);
    // Bad input shapes are errors, not panics.
    let frozen = FrozenConv::new(&w, 1, 1, Epilogue::default(), &KernelOptions::default())?;
    assert!(frozen.is_winograd());
    assert!(frozen
        .forward(&random(&mut rng, &[1, 3, 6, 6])?, &KernelOptions::default())
        .is_err());
    assert!(frozen
        .forward(&random(&mut rng, &[4, 6, 6])?, &KernelOptions::default())
        .is_err());
    Ok(())
}

/// A folded BatchNorm and a PReLU after it, on the Winograd path (3x3 stride 1) and on the
/// fallback (stride 2, 1x1), against the three steps done one after another with candle ops.
#[test]
fn the_epilogue_equals_batch_norm_then_prelu() -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(24);
    for (x_dims, k, ks, stride, pad) in [([2, 8, 12, 10], 6, 3, 1, 1), ([1, 8, 20, 18], 6, 3, 1, 1), ([1, 8, 12, 12], 6, 3, 2, 1), ([1, 8, 12, 12], 6, 1, 2, 0)] {
        let x = random(&mut rng, &x_dims)?;
        let w = random(&mut rng, &[k, x_dims[1], ks, ks])?;
        let scale = (random(&mut rng, &[k])? + 1.5)?;
        let shift = random(&mut rng, &[k])?;
        let slopes = (random(&mut rng, &[k])? * 0.25)?;
        let epilogue = Epilogue { affine: Some((scale.clone(), shift.clone())), prelu: Some(slopes.clone()) };
        let frozen = FrozenConv::new(&w, stride, pad, epilogue, &KernelOptions::default())?;
        let got = frozen.forward(&x, &KernelOptions::default())?;
        let per_channel = |t: &Tensor| t.reshape((1, k, 1, 1));
        let affine = x.conv2d(&w, pad, stride, 1, 1)?.broadcast_mul(&per_channel(&scale)?)?.broadcast_add(&per_channel(&shift)?)?;
        let want = (affine.relu()? - affine.neg()?.relu()?.broadcast_mul(&per_channel(&slopes)?)?)?;
        let e = rel_err(&got, &want)?;
        anyhow::ensure!(e < 1e-5, "{x_dims:?} k{k} {ks}x{ks} s{stride}: rel err {e}");
    }
    // A wrong number of per-channel values is an error naming what it is.
    let w = random(&mut rng, &[6, 4, 3, 3])?;
    let bad = Epilogue { affine: None, prelu: Some(random(&mut rng, &[5])?) };
    let e = FrozenConv::new(&w, 1, 1, bad, &KernelOptions::default()).unwrap_err().to_string();
    assert!(e.contains("PReLU slopes") && e.contains("[6]"), "{e}");
    Ok(())
}
