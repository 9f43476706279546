//! BatchNorm (training mode) followed by PReLU on a typical IResNet activation
//! (64 x 64 x 24 x 24), forward + backward through candle's autograd: the fused CPU kernels
//! (`forward_t` / `forward`) against the candle-op reference paths (`forward_reference`),
//! in images per second.
//!
//! Run: `cargo bench -p arcface-benches --bench fused` (release build).

use std::time::{Duration, Instant};

use arcface_backbone::batch_norm::BatchNorm;
use arcface_backbone::prelu::PReLU;
use candle::{DType, Device, Module, Tensor, Var};
use candle_nn::{ModuleT, VarBuilder, VarMap};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const SHAPE: (usize, usize, usize, usize) = (64, 64, 24, 24);

/// The layers under test and the input they act on.
struct Setup {
    _varmap: VarMap,
    bn: BatchNorm,
    prelu: PReLU,
    x: Var,
    dy: Tensor,
}

fn setup() -> candle::Result<Setup> {
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let bn = BatchNorm::new(SHAPE.1, false, &Default::default(), vb.pp("bn"))?;
    let prelu = PReLU::new(
        Var::from_tensor(&Tensor::full(0.25f32, SHAPE.1, &device)?)?
            .as_tensor()
            .clone(),
    );
    let x = Var::randn(0.5f32, 2f32, SHAPE, &device)?;
    let dy = Tensor::randn(0f32, 1f32, SHAPE, &device)?;
    Ok(Setup {
        _varmap: varmap,
        bn,
        prelu,
        x,
        dy,
    })
}

/// BN -> PReLU -> loss `sum(y * dy)` -> backward.
fn step(s: &Setup, fused: bool) -> candle::Result<()> {
    let x = s.x.as_tensor();
    let y = match fused {
        true => s.prelu.forward(&s.bn.forward_t(x, true)?)?,
        false => s
            .prelu
            .forward_reference(&s.bn.forward_reference(x, true)?)?,
    };
    let grads = (y * &s.dy)?.sum_all()?.backward()?;
    std::hint::black_box(grads.get(x));
    Ok(())
}

fn bench_fused(c: &mut Criterion) {
    let s = match setup() {
        Ok(s) => s,
        Err(e) => panic!("bench setup failed: {e}"),
    };
    let mut group = c.benchmark_group("cpu_bn_prelu_fwd_bwd");
    group.throughput(Throughput::Elements(SHAPE.0 as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(10));
    let layer = format!("{}x{}x{}x{}", SHAPE.0, SHAPE.1, SHAPE.2, SHAPE.3);
    for (imp, fused) in [("reference", false), ("fused", true)] {
        group.bench_function(BenchmarkId::new(imp, &layer), |b| {
            b.iter_custom(|iters| {
                // CPU work is synchronous, so the clock reads after the op are exact.
                let start = Instant::now();
                for _ in 0..iters {
                    if let Err(e) = step(&s, fused) {
                        panic!("{imp}: {e}");
                    }
                }
                start.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = arcface_benches::criterion();
    targets = bench_fused
}
criterion_main!(benches);
