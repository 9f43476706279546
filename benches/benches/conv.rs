//! Convolution throughput on IResNet-50-like layers (batch 32): candle's `Tensor::conv2d`
//! against `arcface_kernels::fastconv::conv2d`, forward alone and forward + backward
//! (input and weight gradients through candle's autograd), in images per second.
//!
//! Run: `cargo bench -p arcface-benches --bench conv` (release build).

use std::time::{Duration, Instant};

use arcface_kernels::{fastconv, KernelOptions};
use candle::{Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const BATCH: usize = 32;

/// (name, input channels, output channels, input size, stride)
const LAYERS: [(&str, usize, usize, usize, usize); 3] = [
    ("64x56x56_3x3_s1", 64, 64, 56, 1),
    ("128x28x28_3x3_s1", 128, 128, 28, 1),
    ("64to128x56x56_3x3_s2", 64, 128, 56, 2),
];

type ConvFn = fn(&Tensor, &Tensor, usize) -> candle::Result<Tensor>;

fn candle_conv(x: &Tensor, w: &Tensor, stride: usize) -> candle::Result<Tensor> {
    x.conv2d(w, 1, stride, 1, 1)
}

fn fast_conv(x: &Tensor, w: &Tensor, stride: usize) -> candle::Result<Tensor> {
    fastconv::conv2d(x, w, stride, 1, &KernelOptions::default())
}

fn run(conv: ConvFn, x: &Var, w: &Var, stride: usize, backward: bool) -> candle::Result<()> {
    let y = conv(x.as_tensor(), w.as_tensor(), stride)?;
    if backward {
        let grads = y.sum_all()?.backward()?;
        std::hint::black_box(grads.get(w));
    }
    std::hint::black_box(&y);
    Ok(())
}

fn bench_conv(c: &mut Criterion) {
    let device = Device::Cpu;
    for (layer, cin, cout, size, stride) in LAYERS {
        let setup = || -> candle::Result<(Var, Var)> {
            let x = Var::randn(0f32, 1f32, (BATCH, cin, size, size), &device)?;
            let w = Var::randn(0f32, 0.05f32, (cout, cin, 3, 3), &device)?;
            Ok((x, w))
        };
        let (x, w) = match setup() {
            Ok(v) => v,
            Err(e) => panic!("bench setup failed: {e}"),
        };
        for (mode, backward) in [("fwd", false), ("fwd_bwd", true)] {
            let mut group = c.benchmark_group(format!("cpu_conv_{mode}"));
            group.throughput(Throughput::Elements(BATCH as u64));
            group.sample_size(10);
            group.warm_up_time(Duration::from_secs(1));
            group.measurement_time(Duration::from_secs(if backward { 20 } else { 8 }));
            for (imp, conv) in [
                ("candle", candle_conv as ConvFn),
                ("fast", fast_conv as ConvFn),
            ] {
                group.bench_function(BenchmarkId::new(imp, layer), |b| {
                    b.iter_custom(|iters| {
                        // CPU work is synchronous, so the clock reads after the op are exact.
                        let start = Instant::now();
                        for _ in 0..iters {
                            if let Err(e) = run(conv, &x, &w, stride, backward) {
                                panic!("{imp} {layer} {mode}: {e}");
                            }
                        }
                        start.elapsed()
                    })
                });
            }
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = arcface_benches::criterion();
    targets = bench_conv
}
criterion_main!(benches);
