//! `fastconv::conv2d` against candle's own `conv2d`: forward output and, through candle's
//! autograd (`Var` + `backward`), the input and weight gradients, on seeded random shapes.
//! candle's conv is the independent reference here; its CPU kernels share no code with ours.

mod common;
use common::{random, rel_err};

use arcface_kernels::{Isa, KernelOptions};
use candle::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `fastconv::conv2d` on the default options.
fn conv2d(x: &Tensor, w: &Tensor, stride: usize, pad: usize) -> candle::Result<Tensor> {
    conv2d_on(x, w, stride, pad, Isa::Avx512)
}

/// `fastconv::conv2d` with its vector extension capped at `isa`.
fn conv2d_on(x: &Tensor, w: &Tensor, stride: usize, pad: usize, isa: Isa) -> candle::Result<Tensor> {
    let opts = KernelOptions { max_isa: isa, ..KernelOptions::default() };
    arcface_kernels::fastconv::conv2d(x, w, stride, pad, &opts)
}

/// One case: shapes (n, c, h, w) and (k, c, kh, kh), stride, padding.
#[derive(Debug, Clone, Copy)]
struct Case {
    x: [usize; 4],
    k: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
}

/// Convolution from differentiable candle primitives (zero padding, strided `index_select`
/// per kernel tap, batched matmul), used as a second reference whose gradients come from
/// candle's autograd of those primitives rather than of `conv2d`.
fn naive_conv(x: &Tensor, w: &Tensor, stride: usize, pad: usize) -> candle::Result<Tensor> {
    let (n, c, h, wd) = x.dims4()?;
    let (k, _, kh, kw) = w.dims4()?;
    let (ho, wo) = (
        (h + 2 * pad - kh) / stride + 1,
        (wd + 2 * pad - kw) / stride + 1,
    );
    let xp = x.pad_with_zeros(2, pad, pad)?.pad_with_zeros(3, pad, pad)?;
    let taps = |len: usize, off: usize| {
        let idx: Vec<u32> = (0..len).map(|o| (o * stride + off) as u32).collect();
        Tensor::new(idx, x.device())
    };
    let mut y = Tensor::zeros((n, k, ho * wo), x.dtype(), x.device())?;
    for ky in 0..kh {
        for kx in 0..kw {
            let tap = xp
                .index_select(&taps(ho, ky)?, 2)?
                .index_select(&taps(wo, kx)?, 3)?;
            let w_tap = w.narrow(2, ky, 1)?.narrow(3, kx, 1)?.reshape((k, c))?;
            y = (y + w_tap.broadcast_matmul(&tap.reshape((n, c, ho * wo))?)?)?;
        }
    }
    y.reshape((n, k, ho, wo))
}

/// Checks forward and both gradients of one case; the loss is `sum(y * r)` with a random
/// `r`, so the output gradient is `r` rather than all ones.
fn check(case: Case, rng: &mut ChaCha8Rng) -> anyhow::Result<()> {
    check_on(case, rng, Isa::Avx512)
}

/// [`check`] with the kernels' vector extension capped at `isa`.
fn check_on(case: Case, rng: &mut ChaCha8Rng, isa: Isa) -> anyhow::Result<()> {
    let [_, c, h, w] = case.x;
    let x = Var::from_tensor(&random(rng, &case.x)?)?;
    let wt = Var::from_tensor(&random(rng, &[case.k, c, case.kernel, case.kernel])?)?;
    let (xs, ws) = (x.as_tensor(), wt.as_tensor());
    let ours = conv2d_on(xs, ws, case.stride, case.pad, isa)?;
    let candle_y = xs.conv2d(ws, case.pad, case.stride, 1, 1)?;
    let naive_y = naive_conv(xs, ws, case.stride, case.pad)?;
    for (name, reference) in [("candle", &candle_y), ("naive", &naive_y)] {
        let e = rel_err(&ours, reference)?;
        anyhow::ensure!(e < 1e-4, "{case:?} {isa:?}: forward vs {name}: rel err {e}");
    }

    let r = random(rng, candle_y.dims())?;
    let g_ours = ours.mul(&r)?.sum_all()?.backward()?;
    let mut references = vec![("naive", naive_y.mul(&r)?.sum_all()?.backward()?)];
    // candle 0.11's conv2d backward derives the transposed conv's output padding from the
    // height alone, so its input gradient has the wrong width (an error) whenever height
    // and width differ modulo the stride; compare with it only where it is defined.
    if h % case.stride == w % case.stride {
        references.push(("candle", candle_y.mul(&r)?.sum_all()?.backward()?));
    }
    for (name, g_ref) in &references {
        for (what, var) in [("input", &x), ("weight", &wt)] {
            let a = g_ours
                .get(var)
                .ok_or_else(|| anyhow::anyhow!("{case:?}: no {what} grad"))?;
            let b = g_ref
                .get(var)
                .ok_or_else(|| anyhow::anyhow!("{case:?}: no {name} grad"))?;
            let e = rel_err(a, b)?;
            anyhow::ensure!(e < 1e-4, "{case:?} {isa:?}: {what} gradient vs {name}: rel err {e}");
        }
    }
    Ok(())
}

/// Every vector extension the CPU has (the stride-2 column copies and the Winograd
/// transforms have one build each).
#[test]
fn grid_of_kernels_strides_paddings_matches_candle() -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for isa in Isa::available() {
        for kernel in [1, 3] {
            for stride in [1, 2] {
                for pad in [0, 1] {
                    // Odd and even sizes, non-square, more and fewer images than threads, and
                    // rows of 16 or more stride-2 columns.
                    for (x, k) in [([1, 3, 7, 7], 5), ([2, 8, 8, 6], 4), ([4, 5, 9, 11], 16), ([1, 4, 37, 40], 8)] {
                        check_on(Case { x, k, kernel, stride, pad }, &mut rng, isa)?;
                    }
                }
            }
        }
    }
    Ok(())
}

#[test]
fn random_shapes_match_candle() -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    for _ in 0..24 {
        let kernel = [1, 3][rng.gen_range(0..2)];
        let case = Case {
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
        };
        check(case, &mut rng)?;
    }
    Ok(())
}

#[test]
fn iresnet_like_layers_match_candle() -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    // Stem, a stage-1 conv, a downsampling conv, its 1x1 stride-2 shortcut, and an image
    // split into several column tiles.
    let cases = [
        Case {
            x: [2, 3, 28, 28],
            k: 64,
            kernel: 3,
            stride: 1,
            pad: 1,
        },
        Case {
            x: [3, 64, 14, 14],
            k: 64,
            kernel: 3,
            stride: 1,
            pad: 1,
        },
        Case {
            x: [2, 64, 14, 14],
            k: 128,
            kernel: 3,
            stride: 2,
            pad: 1,
        },
        Case {
            x: [2, 64, 14, 14],
            k: 128,
            kernel: 1,
            stride: 2,
            pad: 0,
        },
        // 25 columns per row and 576 kernel taps give 11-row column tiles: 11 + 11 + 5.
        Case {
            x: [2, 64, 27, 25],
            k: 16,
            kernel: 3,
            stride: 1,
            pad: 1,
        },
    ];
    for case in cases {
        check(case, &mut rng)?;
    }
    Ok(())
}

/// Shorthand for a square-kernel case.
fn case(x: [usize; 4], k: usize, kernel: usize, stride: usize, pad: usize) -> Case {
    Case {
        x,
        k,
        kernel,
        stride,
        pad,
    }
}

/// Small output maps (at most 128 pixels) with several images: the path that puts a group
/// of images into one GEMM. Batches that do not divide into equal groups, fewer and more
/// groups than threads, and batch 1 (which stays per image).
fn small_map_cases() -> Vec<Case> {
    vec![
        // 7x7 maps: one group of 5, then 45 images in several unequal groups.
        case([5, 32, 7, 7], 48, 3, 1, 1),
        case([45, 8, 7, 7], 16, 3, 1, 1),
        case([1, 16, 7, 7], 24, 3, 1, 1),
        // 10x9 maps with a batch that is not a multiple of the group size.
        case([33, 4, 10, 9], 8, 3, 1, 1),
        // Stride-2 downsampling to 7x7 and its 1x1 stride-2 shortcut.
        case([7, 16, 14, 14], 32, 3, 2, 1),
        case([9, 16, 14, 14], 32, 1, 2, 0),
        // Pointwise (1x1, stride 1) and unpadded 3x3 with odd sizes.
        case([6, 16, 9, 9], 8, 1, 1, 0),
        case([3, 6, 11, 9], 5, 3, 2, 0),
    ]
}

#[test]
fn small_maps_match_candle() -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    for c in small_map_cases() {
        check(c, &mut rng)?;
    }
    Ok(())
}

#[test]
fn small_maps_match_candle_with_one_and_three_threads() -> anyhow::Result<()> {
    // The grouping and whether groups or GEMMs run in parallel depend on the thread count.
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        let mut rng = ChaCha8Rng::seed_from_u64(17 + threads as u64);
        pool.install(|| -> anyhow::Result<()> {
            for c in small_map_cases() {
                check(c, &mut rng)?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Output and both gradients of `sum(conv2d(x, w) * r)`, flattened.
fn outputs(x: &Var, w: &Var, r: &Tensor, stride: usize) -> anyhow::Result<Vec<Vec<f32>>> {
    let y = conv2d(x.as_tensor(), w.as_tensor(), stride, 1)?;
    let grads = y.mul(r)?.sum_all()?.backward()?;
    let mut out = vec![y.flatten_all()?.to_vec1::<f32>()?];
    for var in [x, w] {
        let g = grads
            .get(var)
            .ok_or_else(|| anyhow::anyhow!("missing gradient"))?;
        out.push(g.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(out)
}

#[test]
fn results_are_deterministic_for_a_thread_count() -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(19);
    // 7x7 maps (grouped) and 40x40 maps (per image, several column tiles).
    for (dims, stride) in [
        ([37, 16, 7, 7], 1),
        ([3, 16, 40, 40], 1),
        ([20, 8, 14, 14], 2),
    ] {
        let x = Var::from_tensor(&random(&mut rng, &dims)?)?;
        let w = Var::from_tensor(&random(&mut rng, &[24, dims[1], 3, 3])?)?;
        let y_dims = conv2d(x.as_tensor(), w.as_tensor(), stride, 1)?
            .dims()
            .to_vec();
        let r = random(&mut rng, &y_dims)?;
        let first = outputs(&x, &w, &r, stride)?;
        for _ in 0..2 {
            anyhow::ensure!(
                outputs(&x, &w, &r, stride)? == first,
                "{dims:?}: results differ"
            );
        }
    }
    Ok(())
}

#[test]
fn non_contiguous_inputs_are_handled() -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    // x stored as N x C x W x H and viewed transposed; w stored as C x K x 3 x 3.
    let x = Var::from_tensor(&random(&mut rng, &[2, 4, 9, 7])?)?;
    let w = Var::from_tensor(&random(&mut rng, &[4, 6, 3, 3])?)?;
    let xt = x.as_tensor().transpose(2, 3)?;
    let wt = w.as_tensor().transpose(0, 1)?;
    assert!(!xt.is_contiguous() && !wt.is_contiguous());
    let ours = conv2d(&xt, &wt, 2, 1)?;
    let theirs = xt.conv2d(&wt, 1, 2, 1, 1)?;
    assert!(rel_err(&ours, &theirs)? < 1e-4);
    let r = random(&mut rng, theirs.dims())?;
    let (ga, gb) = (
        ours.mul(&r)?.sum_all()?.backward()?,
        theirs.mul(&r)?.sum_all()?.backward()?,
    );
    for var in [&x, &w] {
        let (a, b) = (ga.get(var).expect("grad"), gb.get(var).expect("ref grad"));
        assert!(rel_err(a, b)? < 1e-4);
    }
    Ok(())
}

#[test]
fn constant_input_gets_no_gradient_but_weight_does() -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x = random(&mut rng, &[2, 3, 10, 10])?;
    let w = Var::from_tensor(&random(&mut rng, &[8, 3, 3, 3])?)?;
    let grads = conv2d(&x, w.as_tensor(), 1, 1)?.sum_all()?.backward()?;
    let reference = x.conv2d(w.as_tensor(), 1, 1, 1, 1)?.sum_all()?.backward()?;
    assert!(grads.get(&x).is_none());
    let dw = grads.get(&w).expect("weight grad");
    assert!(rel_err(dw, reference.get(&w).expect("ref weight grad"))? < 1e-4);
    Ok(())
}

#[test]
fn other_dtypes_fall_back_to_candle() -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let x = random(&mut rng, &[1, 2, 6, 6])?.to_dtype(DType::F64)?;
    let w = random(&mut rng, &[3, 2, 3, 3])?.to_dtype(DType::F64)?;
    let ours = conv2d(&x, &w, 1, 1)?;
    assert_eq!(ours.dtype(), DType::F64);
    assert!(rel_err(&ours, &x.conv2d(&w, 1, 1, 1, 1)?)? < 1e-12);
    Ok(())
}

#[test]
fn bad_shapes_are_errors_not_panics() -> anyhow::Result<()> {
    let x = Tensor::zeros((1, 3, 8, 8), DType::F32, &Device::Cpu)?;
    let w = Tensor::zeros((4, 2, 3, 3), DType::F32, &Device::Cpu)?;
    assert!(conv2d(&x, &w, 1, 1).is_err());
    let w = Tensor::zeros((4, 3, 9, 9), DType::F32, &Device::Cpu)?;
    assert!(conv2d(&x, &w, 1, 0).is_err());
    assert!(conv2d(&x, &w.narrow(2, 0, 3)?.narrow(3, 0, 3)?, 0, 1).is_err());
    Ok(())
}

/// Fewer images than threads: each image's forward is shared among the threads, cut by
/// output rows (large maps) or also by output channels (small ones). Run in pools of 2, 3
/// and 5 threads whatever this machine has, so every cut is taken.
#[test]
fn images_shared_among_threads_match_candle() -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let cases = [
        // Rows only: a map wide enough for several column tiles.
        case([1, 16, 40, 33], 24, 3, 1, 1),
        // Rows and channels: one tile (7x7, 14x14), an odd channel count, stride 2.
        case([1, 32, 7, 7], 48, 3, 1, 1),
        case([2, 24, 14, 14], 7, 3, 1, 1),
        case([1, 16, 15, 13], 32, 3, 2, 1),
        // The 1x1 stride-2 shortcut and a pointwise conv (no im2col).
        case([1, 16, 14, 14], 32, 1, 2, 0),
        case([1, 16, 9, 11], 8, 1, 1, 0),
        // Fewer output channels than threads.
        case([1, 4, 6, 6], 2, 3, 1, 1),
    ];
    for threads in [2, 3, 5] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        for case in cases {
            pool.install(|| check(case, &mut rng))
                .map_err(|e| e.context(format!("{threads} threads")))?;
        }
    }
    Ok(())
}

/// 3x3 stride-1 convolutions over at least 8 channels: forward and input gradient on the
/// Winograd kernel (the weight gradient stays im2col), odd and even sizes, paddings 0-2,
/// batches above and below the thread count.
#[test]
fn winograd_layers_match_candle() -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for case in [
        case([4, 16, 14, 14], 16, 3, 1, 1),
        case([3, 8, 9, 7], 12, 3, 1, 1),
        case([5, 12, 8, 11], 9, 3, 1, 0),
        case([2, 9, 6, 5], 8, 3, 1, 2),
        case([1, 32, 7, 7], 64, 3, 1, 1),
    ] {
        check(case, &mut rng)?;
    }
    Ok(())
}
