//! Margin head (ArcFace, s = 64, m = 0.5) forward + backward on CPU at batch 128 and
//! embedding 512, for 10,000 and 100,000 classes: the cost the head adds to a training step.
//! Run: `cargo bench -p arcface-benches --bench head` (filter e.g. `-- cpu/head/100000`);
//! peak memory: `/usr/bin/time -v target/release/deps/head-* --bench cpu/head/100000`.

use arcface_loss::{HeadConfig, MarginHead};
use candle::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::{Duration, Instant};

const BATCH: usize = 128;
const EMBEDDING: usize = 512;

fn bench_head(c: &mut Criterion) {
    let device = Device::Cpu;
    let mut group = c.benchmark_group("cpu/head");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(BATCH as u64));
    for classes in [10_000usize, 100_000] {
        let config = HeadConfig { embedding_size: EMBEDDING, ..HeadConfig::arcface(classes) };
        let varmap = VarMap::new();
        let head = MarginHead::init_varmap(&config, &varmap, "", DType::F32, &device, 0).expect("head");
        let emb = Var::from_tensor(
            &arcface_loss::seeded_normal((BATCH, EMBEDDING), 0.0, 1.0, 1, DType::F32, &device).expect("emb"),
        )
        .expect("var");
        let labels: Vec<u32> = (0..BATCH).map(|i| ((i * 7919) % classes) as u32).collect();
        let labels = Tensor::new(labels, &device).expect("labels");
        group.bench_function(BenchmarkId::from_parameter(classes), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let out = head.forward(emb.as_tensor(), &labels).expect("forward");
                    let grads = out.loss.backward().expect("backward");
                    // CPU is synchronous; reading a value still forces every lazy op to finish.
                    std::hint::black_box(grads.get(head.weight()).is_some());
                }
                device.synchronize().expect("sync");
                start.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = arcface_benches::criterion();
    targets = bench_head
}
criterion_main!(benches);
