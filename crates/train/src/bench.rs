//! Training throughput of a backbone with an ArcFace head: the loop's own optimizer step
//! ([`crate::step`]) on one synthetic batch, repeated, in images/s, with peak memory and, on
//! request, the split of a step into forward, backward and optimizer (and, with a profiler in
//! the kernel options, into layer kinds). The `arcface bench` command prints these numbers
//! beside PyTorch's.

use std::time::Instant;

use arcface_backbone::{init_varmap_with, trainable_vars, Config, KernelOptions};
use arcface_loss::{HeadConfig, MarginHead};
use candle::{DType, Device, Tensor};
use candle_nn::VarMap;
use serde::Serialize;

use crate::error::{Result, TrainError};
use crate::optim::{Optimizer, OptimizerConfig};
use crate::precision::{Precision, PrecisionView};
use crate::step::{self, StepNet};

mod memory;

pub use memory::{cuda_used_mb, current_rss_mb, page_faults, peak_rss_mb, total_memory_mb};

/// Largest batch a bench accepts: far past any recipe (InsightFace takes 128 per GPU).
pub const MAX_BATCH: usize = 1 << 16;
/// Largest class count a bench accepts (InsightFace's largest sets have about 2 M classes).
pub const MAX_CLASSES: usize = 1 << 24;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchSpec {
    /// The backbone.
    pub backbone: Config,
    /// The arithmetic of the forward pass.
    pub precision: Precision,
    /// Images per step.
    pub batch_size: usize,
    /// Classes of the margin head.
    pub classes: usize,
    /// Untimed steps first.
    pub warmup: usize,
    /// Timed steps.
    pub steps: usize,
    /// Time a few more steps phase by phase (the device synchronized between phases).
    pub breakdown: bool,
    /// Print the elapsed time and resident memory after every timed step (to watch for leaks).
    pub trace: bool,
}

impl BenchSpec {
    /// Refuses sizes that would abort the process on allocation instead of measuring it: a
    /// batch or class count past [`MAX_BATCH`] / [`MAX_CLASSES`], and on the CPU a stem
    /// activation (`batch x width x side^2` f32, the first of many) larger than the machine.
    pub fn check(&self, device: &Device) -> Result<()> {
        let fail = |msg: String| Err(TrainError::Setup(msg));
        if !(1..=MAX_BATCH).contains(&self.batch_size) {
            return fail(format!("batch size must be in 1..={MAX_BATCH}, got {}", self.batch_size));
        }
        if !(1..=MAX_CLASSES).contains(&self.classes) {
            return fail(format!("classes must be in 1..={MAX_CLASSES}, got {}", self.classes));
        }
        let side = self.backbone.input_size as u128;
        let stem = self.batch_size as u128 * self.backbone.width as u128 * side * side * 4;
        let total = if device.is_cpu() { total_memory_mb() } else { None };
        match total {
            Some(mb) if stem as f64 / 1e6 > mb => fail(format!(
                "one activation of batch {} at width {} and side {} is {:.1} GB, more than this machine's {:.1} GB; \
                 lower the batch size, width or input size",
                self.batch_size,
                self.backbone.width,
                side,
                stem as f64 / 1e9,
                mb / 1e3
            )),
            _ => Ok(()),
        }
    }
}

/// Milliseconds per step in each phase.
#[derive(Serialize, Clone, Debug)]
pub struct Breakdown {
    /// Backbone and head, loss included.
    pub forward_ms: f64,
    /// Backpropagation.
    pub backward_ms: f64,
    /// The optimizer update.
    pub optimizer_ms: f64,
    /// With a profiler in the kernel options: each layer kind's forward and the convolution,
    /// BatchNorm and PReLU backward passes (synchronized around each call).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub forward_layers: Vec<LayerTime>,
}

/// One layer kind's time per step.
#[derive(Serialize, Clone, Debug)]
pub struct LayerTime {
    /// The layer kind (`conv`, `bn`, ...).
    pub kind: String,
    /// Milliseconds per step.
    pub ms: f64,
    /// Calls per step.
    pub calls: f64,
}

/// The measured throughput of one configuration.
#[derive(Serialize, Clone, Debug)]
pub struct Throughput {
    /// Training images per second.
    pub images_per_sec: f64,
    /// Milliseconds per step.
    pub step_ms: f64,
    /// Peak GPU memory in use (CUDA, the driver's view) or peak resident memory (CPU), in MB.
    pub peak_memory_mb: Option<f64>,
    /// Page faults per timed step (minor + major, this process; CPU allocation churn).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_faults_per_step: Option<f64>,
    /// The per-phase split, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<Breakdown>,
}

/// Runs `spec` on `device` with the backbone on `kernels`.
pub fn bench_training_step(spec: &BenchSpec, kernels: &KernelOptions, device: &Device) -> Result<Throughput> {
    spec.check(device)?;
    let cfg = spec.backbone;
    let varmap = VarMap::new();
    let model = init_varmap_with(&cfg, kernels, &varmap, device, 0)?;
    let head_cfg = HeadConfig { embedding_size: cfg.num_features, ..HeadConfig::arcface(spec.classes) };
    let head = MarginHead::init_varmap(&head_cfg, &varmap, "head", DType::F32, device, 1)?;
    let params = trainable_vars(&varmap).into_iter().enumerate().map(|(i, v)| (format!("p{i}"), v)).collect();
    // InsightFace's recipe: SGD lr 0.1, momentum 0.9, weight decay 5e-4.
    let sgd = OptimizerConfig::Sgd { momentum: 0.9, weight_decay: 5e-4, nesterov: false };
    let mut opt = Optimizer::new(sgd, params, 0.1);
    let view = PrecisionView::new(spec.precision, &cfg, &varmap, device)?;
    let net = StepNet { model: &model, view: &view, head: &head };
    let (batch, side) = (spec.batch_size, cfg.input_size);
    let x = Tensor::randn(0f32, 1f32, (batch, 3, side, side), device)?;
    let labels: Vec<u32> = (0..batch as u32).map(|i| (i * 7919) % spec.classes as u32).collect();
    let labels = Tensor::new(labels.as_slice(), device)?;
    let one_step = |opt: &mut Optimizer| -> Result<()> {
        let out = net.forward(&x, &labels)?;
        let grads = step::backward(&out.loss, None)?;
        step::update(opt, &view, &grads)
    };

    for _ in 0..spec.warmup {
        one_step(&mut opt)?;
    }
    device.synchronize()?;
    let mut peak_gpu_mb = cuda_used_mb(device);
    let faults0 = page_faults();
    let t0 = Instant::now();
    for i in 0..spec.steps {
        one_step(&mut opt)?;
        if device.is_cuda() {
            device.synchronize()?;
            if let Some(now) = cuda_used_mb(device) {
                peak_gpu_mb = Some(peak_gpu_mb.map_or(now, |p: f64| p.max(now)));
            }
        }
        if spec.trace {
            let rss = current_rss_mb().unwrap_or(0.0);
            eprintln!("step {i}: {:.1} s, RSS {rss:.0} MB", t0.elapsed().as_secs_f64());
        }
    }
    device.synchronize()?;
    let secs = t0.elapsed().as_secs_f64();
    let faults = faults0.zip(page_faults()).map(|(a, b)| b.saturating_sub(a));
    let breakdown = if spec.breakdown { Some(phases(&net, &mut opt, &x, &labels, spec.steps, kernels, device)?) } else { None };
    let steps = spec.steps.max(1) as f64;
    Ok(Throughput {
        images_per_sec: (batch * spec.steps) as f64 / secs,
        step_ms: secs * 1e3 / steps,
        peak_memory_mb: if device.is_cuda() { peak_gpu_mb } else { peak_rss_mb() },
        page_faults_per_step: faults.map(|f| f as f64 / steps),
        breakdown,
    })
}

/// Times up to five steps phase by phase, synchronizing the device between phases.
fn phases(
    net: &StepNet,
    opt: &mut Optimizer,
    x: &Tensor,
    labels: &Tensor,
    steps: usize,
    kernels: &KernelOptions,
    device: &Device,
) -> Result<Breakdown> {
    let n = steps.clamp(1, 5);
    let (mut f, mut b, mut o) = (0.0, 0.0, 0.0);
    let take = || kernels.profiler().map(|p| p.take()).unwrap_or_default();
    take();
    for _ in 0..n {
        let t = Instant::now();
        let out = net.forward(x, labels)?;
        device.synchronize()?;
        f += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let grads = step::backward(&out.loss, None)?;
        device.synchronize()?;
        b += t.elapsed().as_secs_f64();
        let t = Instant::now();
        step::update(opt, net.view, &grads)?;
        device.synchronize()?;
        o += t.elapsed().as_secs_f64();
    }
    let ms = |v: f64| v * 1e3 / n as f64;
    let forward_layers = take()
        .into_iter()
        .map(|(kind, secs, calls)| LayerTime { kind: kind.into(), ms: ms(secs), calls: calls as f64 / n as f64 })
        .collect();
    Ok(Breakdown { forward_ms: ms(f), backward_ms: ms(b), optimizer_ms: ms(o), forward_layers })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(batch_size: usize, classes: usize, width: usize) -> BenchSpec {
        let backbone = Config::ir18().with_width(width);
        BenchSpec { backbone, precision: Precision::F32, batch_size, classes, warmup: 0, steps: 1, breakdown: false, trace: false }
    }

    #[test]
    fn absurd_sizes_are_refused_before_any_allocation() {
        // Before: `arcface bench --batch-size 100000000000` aborted with "memory allocation of
        // 1228800000000000 bytes failed"; `--classes 2^32` divided by zero.
        let cpu = Device::Cpu;
        let e = spec(100_000_000_000, 10, 8).check(&cpu).unwrap_err().to_string();
        assert!(e.contains("batch size must be in 1..=65536, got 100000000000"), "{e}");
        let e = spec(32, 1 << 32, 8).check(&cpu).unwrap_err().to_string();
        assert!(e.contains("classes must be in 1..=16777216"), "{e}");
        if total_memory_mb().is_some_and(|mb| mb < 4e6) {
            let e = spec(MAX_BATCH, 10, 1024).check(&cpu).unwrap_err().to_string();
            assert!(e.contains("more than this machine's"), "{e}");
        }
        assert!(spec(32, 10_000, 64).check(&cpu).is_ok());
    }
}
