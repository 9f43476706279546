//! GFLOP/s of every convolution shape of IResNet-50 at 112 px (the training forward, forward
//! plus both gradients, and the inference forward of a `FrozenConv`, whose kernel is prepared
//! once) and the machine's FMA peak, measured by a register-only loop, so that each
//! layer reads as a fraction of what the cores can do. Criterion's throughput is in
//! floating-point operations (a multiply-add counts two), so its `elem/s` are FLOP/s.
//! `benches/pytorch/compare_layers.py` runs this and times `torch.nn.functional.conv2d` on the
//! same shapes.
//!
//! Run: `cargo bench -p arcface-benches --bench layers`; the kernels use the best vector
//! extension the CPU has.

use std::time::{Duration, Instant};

use arcface_kernels::{fastconv, FrozenConv, KernelOptions};
use candle::{Device, Var};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Images per call: IResNet's training batch per core is about this size on a CPU.
const BATCH: usize = 8;

/// (name, input channels, output channels, input side, kernel, stride): IResNet-50's
/// distinct convolutions (the stem, each stage's 3x3 at stride 1 and 2, the widening 3x3
/// and the 1x1 stride-2 shortcut).
const LAYERS: [(&str, usize, usize, usize, usize, usize); 13] = [
    ("stem_3to64_112", 3, 64, 112, 3, 1),
    ("s1_64_112", 64, 64, 112, 3, 1),
    ("s1_64_112_s2", 64, 64, 112, 3, 2),
    ("s1_64_56", 64, 64, 56, 3, 1),
    ("s2_64to128_56", 64, 128, 56, 3, 1),
    ("s2_128_56_s2", 128, 128, 56, 3, 2),
    ("s2_128_28", 128, 128, 28, 3, 1),
    ("s3_256_28_s2", 256, 256, 28, 3, 2),
    ("s3_256_14", 256, 256, 14, 3, 1),
    ("s4_512_14_s2", 512, 512, 14, 3, 2),
    ("s4_512_7", 512, 512, 7, 3, 1),
    ("down_64to128_1x1_s2", 64, 128, 56, 1, 2),
    ("down_256to512_1x1_s2", 256, 512, 14, 1, 2),
];

/// Multiply-adds times two of one forward over `BATCH` images.
fn forward_flops(cin: usize, cout: usize, side: usize, kernel: usize, stride: usize) -> u64 {
    let pad = kernel / 2;
    let out = (side + 2 * pad - kernel) / stride + 1;
    2 * (BATCH * cout * cin * kernel * kernel * out * out) as u64
}

fn bench_layers(c: &mut Criterion) {
    let device = Device::Cpu;
    let opts = KernelOptions::default();
    bench_training(c, &device, &opts);
    let mut group = c.benchmark_group("cpu_layer_infer");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    for (name, cin, cout, side, kernel, stride) in LAYERS {
        group.throughput(Throughput::Elements(forward_flops(cin, cout, side, kernel, stride)));
        let x = candle::Tensor::randn(0f32, 1f32, (BATCH, cin, side, side), &device).expect("x");
        let w = candle::Tensor::randn(0f32, 0.05f32, (cout, cin, kernel, kernel), &device).expect("w");
        let conv = FrozenConv::new(&w, stride, kernel / 2, Default::default(), &opts)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| conv.forward(&x, &opts).unwrap_or_else(|e| panic!("{name} infer: {e}")))
        });
    }
    group.finish();
}

/// The training forward (`fastconv::conv2d`, the Winograd kernel transformed on every call)
/// alone and with both gradients.
fn bench_training(c: &mut Criterion, device: &Device, opts: &KernelOptions) {
    for (mode, backward) in [("fwd", false), ("fwd_bwd", true)] {
        let mut group = c.benchmark_group(format!("cpu_layer_{mode}"));
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(3));
        for (name, cin, cout, side, kernel, stride) in LAYERS {
            // The backward computes the input and the weight gradient: twice the forward.
            let flops =
                forward_flops(cin, cout, side, kernel, stride) * if backward { 3 } else { 1 };
            group.throughput(Throughput::Elements(flops));
            let x = Var::randn(0f32, 1f32, (BATCH, cin, side, side), device).expect("x");
            let w = Var::randn(0f32, 0.05f32, (cout, cin, kernel, kernel), device).expect("w");
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let y = fastconv::conv2d(
                            x.as_tensor(),
                            w.as_tensor(),
                            stride,
                            kernel / 2,
                            opts,
                        )
                        .unwrap_or_else(|e| panic!("{name} {mode}: {e}"));
                        if backward {
                            let grads = y.sum_all().and_then(|s| s.backward()).expect("backward");
                            std::hint::black_box(grads.get(&w));
                        }
                        std::hint::black_box(&y);
                    }
                    start.elapsed()
                })
            });
        }
        group.finish();
    }
}

/// Independent accumulators per FMA loop: enough to cover the FMA latency (4 cycles) on two
/// ports.
const CHAINS: usize = 12;
/// Loop trips per measured call.
const TRIPS: u64 = 1 << 20;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_loop_avx512(trips: u64) -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
    let mut acc = [_mm512_set1_ps(1.0); CHAINS];
    for _ in 0..trips {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, a, b);
        }
    }
    acc.iter().map(|&v| _mm512_reduce_add_ps(v)).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_loop_avx2(trips: u64) -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
    let mut acc = [_mm256_set1_ps(1.0); CHAINS];
    for _ in 0..trips {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, a, b);
        }
    }
    let mut lanes = [0f32; 8];
    let mut total = 0.0;
    for v in acc {
        _mm256_storeu_ps(lanes.as_mut_ptr(), v);
        total += lanes.iter().sum::<f32>();
    }
    total
}

/// The FMA peak per vector extension the CPU has, on one thread and on every rayon thread.
fn bench_peak(c: &mut Criterion) {
    let mut group = c.benchmark_group("cpu_peak");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    #[allow(unused_mut)]
    let mut loops: Vec<(&str, usize, unsafe fn(u64) -> f32)> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            loops.push(("avx512", 16, fma_loop_avx512));
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            loops.push(("avx2", 8, fma_loop_avx2));
        }
    }
    let threads = rayon::current_num_threads();
    for (isa, lanes, fma) in loops {
        for t in [1, threads] {
            let flops = 2 * (lanes * CHAINS) as u64 * TRIPS * t as u64;
            group.throughput(Throughput::Elements(flops));
            group.bench_function(BenchmarkId::new(isa, format!("{t}t")), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        // SAFETY: `fma` is only listed when the CPU has its extension.
                        let sum: f32 = if t == 1 {
                            unsafe { fma(TRIPS) }
                        } else {
                            rayon::broadcast(|_| unsafe { fma(TRIPS) })
                                .into_iter()
                                .sum()
                        };
                        std::hint::black_box(sum);
                    }
                    start.elapsed()
                })
            });
            if threads == 1 {
                break;
            }
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = arcface_benches::criterion();
    targets = bench_peak, bench_layers
}
criterion_main!(benches);
