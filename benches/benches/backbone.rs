//! IResNet throughput in images per second: eval-mode forward at batch 1 and 32, and a
//! training step (train-mode forward + backward of a scalar loss) at batch 32, for r34 and
//! r50 at 112x112. The forward rows time what `eval`, `embed` and `verify` run, the network
//! frozen for inference (`IResNet::frozen`) called on rayon's pool; `b<batch>_unfrozen` rows
//! time the training network's eval-mode forward called from outside the pool. `benches/pytorch/backbone_bench.py` runs the same work in PyTorch.
//!
//! Run: `cargo bench -p arcface-benches --bench backbone` (add `--features cuda` for the
//! GPU rows). Set `ARCFACE_BENCH_MODELS=r50` to restrict the models, `ARCFACE_BENCH_WORK=forward`
//! to restrict the work, and `ARCFACE_BENCH_CANDLE_CONV=1` to add rows (`..._candle_conv`)
//! that use candle's own convolution instead of `fastconv`, to measure its speedup (slow).

use std::time::{Duration, Instant};

use arcface_backbone::{init_varmap, Config, ConvKernel, IResNet, KernelOptions};
use candle::{Device, Tensor};
use candle_nn::{ModuleT, VarBuilder, VarMap};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};

fn devices() -> Vec<(&'static str, Device)> {
    let mut out = vec![("cpu", Device::Cpu)];
    if let Ok(dev) = Device::new_cuda(0) {
        out.push(("cuda", dev));
    }
    out
}

fn step(model: &IResNet, x: &Tensor, train: bool) -> candle::Result<()> {
    let y = if model.is_frozen() {
        rayon::scope(|_| model.forward_t(x, train))?
    } else {
        model.forward_t(x, train)?
    };
    if train {
        let grads = y.sqr()?.mean_all()?.backward()?;
        std::hint::black_box(grads);
    } else {
        std::hint::black_box(y);
    }
    Ok(())
}

fn timed(model: &IResNet, x: &Tensor, train: bool, iters: u64, dev: &Device) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        if let Err(e) = step(model, x, train).and_then(|_| dev.synchronize()) {
            panic!("bench step failed: {e}");
        }
    }
    start.elapsed()
}

fn bench_backbone(c: &mut Criterion) {
    let models = std::env::var("ARCFACE_BENCH_MODELS").unwrap_or_else(|_| "r34,r50".into());
    let works = std::env::var("ARCFACE_BENCH_WORK").unwrap_or_else(|_| "forward,train_step".into());
    let with_candle_conv = std::env::var("ARCFACE_BENCH_CANDLE_CONV").is_ok_and(|v| v == "1");
    for (dev_name, dev) in devices() {
        for name in models.split(',') {
            let Some(config) = Config::from_name(name) else { panic!("unknown model {name}") };
            let varmap = VarMap::new();
            let model = match init_varmap(&config, &varmap, &dev, 0) {
                Ok(m) => m,
                Err(e) => panic!("init failed: {e}"),
            };
            let vb = VarBuilder::from_varmap(&varmap, candle::DType::F32, &dev);
            let reference = match IResNet::with_kernels(&config, &KernelOptions { conv: ConvKernel::Candle, ..Default::default() }, vb) {
                Ok(m) => m,
                Err(e) => panic!("init failed: {e}"),
            };
            let frozen = match model.frozen() {
                Ok(m) => m,
                Err(e) => panic!("freezing failed: {e}"),
            };
            for (work, batch, train) in [("forward", 1, false), ("forward", 32, false), ("train_step", 32, true)] {
                if !works.split(',').any(|w| w == work) {
                    continue;
                }
                let x = match Tensor::randn(0f32, 1., (batch, 3, 112, 112), &dev) {
                    Ok(x) => x,
                    Err(e) => panic!("input failed: {e}"),
                };
                let mut group = c.benchmark_group(format!("{dev_name}/{name}/{work}"));
                group.throughput(Throughput::Elements(batch as u64));
                group.sample_size(10);
                group.sampling_mode(SamplingMode::Flat);
                group.warm_up_time(Duration::from_millis(500));
                group.measurement_time(Duration::from_secs(if batch == 1 { 5 } else { 20 }));
                let mut variants = match train {
                    true => vec![("", &model)],
                    false => vec![("", &frozen), ("_unfrozen", &model)],
                };
                if with_candle_conv && dev.is_cpu() {
                    variants.push(("_candle_conv", &reference));
                }
                for (suffix, m) in &variants {
                    group.bench_function(format!("b{batch}{suffix}"), |b| {
                        b.iter_custom(|iters| timed(m, &x, train, iters, &dev))
                    });
                }
                group.finish();
            }
        }
    }
}

criterion_group! {
    name = benches;
    config = arcface_benches::criterion();
    targets = bench_backbone
}
criterion_main!(benches);
