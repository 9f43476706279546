//! `arcface bench`: the training-step throughput of `arcface_train::bench` for each backbone
//! and precision asked for, printed as a table; `--pytorch` runs
//! `benches/pytorch/train_bench.py` with the same settings and prints the ratio; `--save DIR`
//! writes the figures as JSON with the date and the device's model.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{anyhow, Context};
use arcface_backbone::{select_device, Config, KernelOptions};
use arcface_train::bench::{bench_training_step, BenchSpec, Throughput};
use arcface_train::precision::Precision;
use candle::Device;
use clap::Args;
use serde::Serialize;

/// Arguments of `bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Backbones, comma separated.
    #[arg(long, default_value = "r34,r50", value_delimiter = ',')]
    pub backbones: Vec<String>,
    /// Precisions, comma separated: f32, bf16.
    #[arg(long, default_value = "f32", value_delimiter = ',')]
    pub precision: Vec<Precision>,
    /// Batch size (default: 128 on CUDA, 32 on CPU).
    #[arg(long, value_parser = crate::positive)]
    pub batch_size: Option<usize>,
    /// Backbone width override (64 is the standard model).
    #[arg(long)]
    pub width: Option<usize>,
    /// Input side override (112 is the standard model).
    #[arg(long)]
    pub input_size: Option<usize>,
    /// Classes of the margin head.
    #[arg(long, default_value_t = 10_000)]
    pub classes: usize,
    /// Untimed warm-up steps.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 5, value_parser = crate::positive)]
    pub steps: usize,
    /// auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Also run the PyTorch reference (`benches/pytorch/train_bench.py`) and print the ratio.
    #[arg(long)]
    pub pytorch: bool,
    /// Python interpreter for `--pytorch`.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Write the results as JSON into this folder (e.g. benches/results).
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// After the timed steps, time a few more split into forward (backbone and head, loss
    /// included), backward and optimizer, synchronizing the device between them.
    #[arg(long)]
    pub breakdown: bool,
    /// Print the elapsed time and resident memory after every timed step.
    #[arg(long)]
    pub trace: bool,
}

/// One measured configuration.
#[derive(Serialize, Clone, Debug)]
pub struct BenchResult {
    framework: String,
    device: String,
    backbone: String,
    precision: String,
    batch_size: usize,
    classes: usize,
    steps: usize,
    #[serde(flatten)]
    throughput: Throughput,
}

pub fn run(a: BenchArgs) -> anyhow::Result<ExitCode> {
    let kernels = crate::kernel_env::from_env();
    let device = select_device(&a.device, kernels.cuda_pool)?;
    let device_name = if device.is_cuda() { "cuda" } else { "cpu" };
    let batch = a.batch_size.unwrap_or(if device.is_cuda() { 128 } else { 32 });
    let mut results = Vec::new();
    // A failing configuration (an unsupported dtype, out of memory, a missing PyTorch) is
    // reported and skipped: the others still run and are saved, and the exit code says so.
    let mut failures = Vec::new();
    for backbone in &a.backbones {
        for &precision in &a.precision {
            let r = match bench_one(backbone, precision, batch, &a, &kernels, &device, device_name) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("candle  {device_name} {backbone} {precision} batch {batch}: FAILED: {e:#}");
                    failures.push(format!("candle {backbone} {precision}"));
                    continue;
                }
            };
            let t = &r.throughput;
            println!(
                "candle  {device_name} {backbone} {precision} batch {batch}: {:.2} images/s ({:.1} ms/step){}",
                t.images_per_sec,
                t.step_ms,
                t.peak_memory_mb
                    .map(|m| format!(", peak {} {m:.0} MB", if device.is_cuda() { "GPU memory in use" } else { "RSS" }))
                    .unwrap_or_default()
                    + &t.page_faults_per_step.map(|f| format!(", {f:.0} page faults/step")).unwrap_or_default()
            );
            if let Some(b) = &t.breakdown {
                println!(
                    "  phases: forward {:.1} ms, backward {:.1} ms, optimizer {:.1} ms",
                    b.forward_ms, b.backward_ms, b.optimizer_ms
                );
                for l in &b.forward_layers {
                    println!("    {:<20} {:8.1} ms ({} calls)", l.kind, l.ms, l.calls);
                }
            }
            let ours = t.images_per_sec;
            results.push(r);
            if a.pytorch {
                match pytorch(backbone, precision.name(), batch, &a, device_name) {
                    Ok(torch) => {
                        let t = &torch.throughput;
                        println!(
                            "pytorch {device_name} {backbone} {precision} batch {batch}: {:.2} images/s ({:.1} ms/step){}",
                            t.images_per_sec,
                            t.step_ms,
                            t.peak_memory_mb.map(|m| format!(", peak allocated {m:.0} MB")).unwrap_or_default()
                                + &t.page_faults_per_step.map(|f| format!(", {f:.0} page faults/step")).unwrap_or_default()
                        );
                        println!("ratio candle/pytorch: {:.2}x", ours / t.images_per_sec);
                        results.push(torch);
                    }
                    Err(e) => {
                        eprintln!("pytorch {device_name} {backbone} {precision} batch {batch}: FAILED: {e:#}");
                        failures.push(format!("pytorch {backbone} {precision}"));
                    }
                }
            }
        }
    }
    if let Some(dir) = &a.save {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        let date = iso_date(stamp);
        let path = dir.join(format!("train-{device_name}-{date}-{stamp}.json"));
        let doc = serde_json::json!({
            "date": date,
            "unix_time": stamp,
            "device": device_name,
            "device_model": device_model(&device),
            "results": results,
        });
        std::fs::write(&path, serde_json::to_string_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("saved {}", path.display());
    }
    if failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("bench: {} configuration(s) failed: {}", failures.len(), failures.join(", "));
        Ok(ExitCode::FAILURE)
    }
}

/// The UTC calendar date `YYYY-MM-DD` of a Unix time (Hinnant's civil-from-days).
fn iso_date(unix_secs: u64) -> String {
    let z = (unix_secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The GPU's name from `nvidia-smi`, or the CPU's from `/proc/cpuinfo` (best effort).
fn device_model(device: &candle::Device) -> String {
    if device.is_cuda() {
        let out = std::process::Command::new("nvidia-smi").args(["--query-gpu=name", "--format=csv,noheader"]).output();
        if let Ok(o) = out {
            if let Some(line) = String::from_utf8_lossy(&o.stdout).lines().next() {
                return line.trim().to_string();
            }
        }
        return "unknown CUDA device".into();
    }
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

fn bench_one(
    backbone: &str,
    precision: Precision,
    batch: usize,
    a: &BenchArgs,
    kernels: &KernelOptions,
    device: &Device,
    device_name: &str,
) -> anyhow::Result<BenchResult> {
    let mut cfg = Config::from_name(backbone).ok_or_else(|| anyhow!("unknown backbone `{backbone}`"))?;
    if let Some(w) = a.width {
        cfg = cfg.with_width(w);
    }
    if let Some(s) = a.input_size {
        cfg = cfg.with_input_size(s);
    }
    cfg.validate().map_err(|e| anyhow!("invalid backbone config: {e}"))?;
    let spec = BenchSpec {
        backbone: cfg,
        precision,
        batch_size: batch,
        classes: a.classes,
        warmup: a.warmup,
        steps: a.steps,
        breakdown: a.breakdown,
        trace: a.trace,
    };
    Ok(BenchResult {
        framework: "candle".into(),
        device: device_name.into(),
        backbone: backbone.into(),
        precision: precision.to_string(),
        batch_size: batch,
        classes: a.classes,
        steps: a.steps,
        throughput: bench_training_step(&spec, kernels, device)?,
    })
}

fn pytorch(backbone: &str, precision: &str, batch: usize, a: &BenchArgs, device: &str) -> anyhow::Result<BenchResult> {
    // From the working directory when run at the workspace root (also a copy of the tree on
    // another machine), else where this binary was built.
    let rel = PathBuf::from("benches/pytorch/train_bench.py");
    let script = if rel.is_file() {
        rel
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../benches/pytorch/train_bench.py")
    };
    let out = Command::new(&a.python)
        .arg(&script)
        .args(["--backbone", backbone, "--precision", precision, "--device", device])
        .args(["--batch-size", &batch.to_string(), "--classes", &a.classes.to_string()])
        .args(["--warmup", &a.warmup.to_string(), "--steps", &a.steps.to_string(), "--json", "--best"])
        .output()
        .with_context(|| format!("running {} {}", a.python, script.display()))?;
    if !out.status.success() {
        return Err(anyhow!("PyTorch reference failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    let v: serde_json::Value =
        serde_json::from_str(last).with_context(|| format!("parsing the PyTorch reference's output {last:?}"))?;
    let num = |k: &str| v[k].as_f64().ok_or_else(|| anyhow!("PyTorch output lacks `{k}`"));
    Ok(BenchResult {
        framework: format!("pytorch{}", v["variant"].as_str().map(|s| format!(" ({s})")).unwrap_or_default()),
        device: device.into(),
        backbone: backbone.into(),
        precision: precision.to_string(),
        batch_size: batch,
        classes: a.classes,
        steps: a.steps,
        throughput: Throughput {
            images_per_sec: num("images_per_sec")?,
            step_ms: num("step_ms")?,
            peak_memory_mb: v["peak_memory_mb"].as_f64(),
            page_faults_per_step: v["page_faults_per_step"].as_f64(),
            breakdown: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::iso_date;

    #[test]
    fn iso_date_matches_known_days() {
        assert_eq!(iso_date(0), "1970-01-01");
        assert_eq!(iso_date(951_782_400), "2000-02-29"); // a leap day of a century leap year
        assert_eq!(iso_date(1_795_838_400), "2026-11-28");
        assert_eq!(iso_date(4_107_542_399), "2100-02-28"); // 2100 is not a leap year
    }
}
