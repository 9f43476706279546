//! Times the parts of one head step (cosine, forward, backward) at batch 128, d = 512, and
//! prints the peak resident memory: `cargo run --release -p arcface-loss --example head_profile -- 10000`.

use arcface_loss::{seeded_normal, HeadConfig, MarginHead};
use candle::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use std::time::Instant;

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> candle::Result<()> {
    let classes: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let steps = 5;
    let device = Device::Cpu;
    let config = HeadConfig::arcface(classes);
    let varmap = VarMap::new();
    let head = MarginHead::init_varmap(&config, &varmap, "", DType::F32, &device, 0)?;
    let emb = Var::from_tensor(&seeded_normal((128, 512), 0.0, 1.0, 1, DType::F32, &device)?)?;
    let labels: Vec<u32> = (0..128).map(|i| ((i * 7919) % classes) as u32).collect();
    let labels = Tensor::new(labels, &device)?;
    let (mut t_cos, mut t_fwd, mut t_bwd) = (0.0, 0.0, 0.0);
    for _ in 0..steps {
        let t = Instant::now();
        let _ = head.cosine(emb.as_tensor())?;
        t_cos += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let out = head.forward(emb.as_tensor(), &labels)?;
        t_fwd += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let _grads = out.loss.backward()?;
        t_bwd += t.elapsed().as_secs_f64();
    }
    let ms = |t: f64| 1e3 * t / steps as f64;
    println!(
        "C={classes}: cosine {:.1} ms, forward {:.1} ms, backward {:.1} ms, step {:.1} ms, peak RSS {} MiB",
        ms(t_cos),
        ms(t_fwd),
        ms(t_bwd),
        ms(t_fwd + t_bwd),
        peak_rss_kib().unwrap_or(0) / 1024
    );
    Ok(())
}
