//! `arcface train`: a config (preset name or TOML file), command-line overrides, then
//! `arcface_train::train`. `--resume runs/NAME` continues a run from its own resolved config.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use arcface_train::{train, RunOptions, TrainConfig};
use clap::Args;

/// Arguments of `train`. Flags override the config file.
#[derive(Args)]
pub struct TrainArgs {
    /// Preset name in `configs/` (quick, r50_arcface, ...) or a TOML file.
    #[arg(long, default_value = "quick")]
    pub config: String,
    /// Continue the run in this folder from its last checkpoint (uses its `config.toml`).
    #[arg(long, conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    /// Run folder (default `runs/<config name>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Backbone: r18, r34, r50 or r100.
    #[arg(long)]
    pub backbone: Option<String>,
    /// Backbone width (channels of the first stage; 64 is the standard model).
    #[arg(long)]
    pub width: Option<usize>,
    /// Input side in pixels (a multiple of 16; 112 is the standard model).
    #[arg(long)]
    pub input_size: Option<usize>,
    /// Loss: softmax, arcface, cosface, sphereface or combined.
    #[arg(long)]
    pub loss: Option<String>,
    /// Logit scale s.
    #[arg(long)]
    pub scale: Option<f64>,
    /// Margin m (ArcFace: radians; CosFace: cosine; SphereFace: multiplier).
    #[arg(long)]
    pub margin: Option<f64>,
    /// LFW protocol to train under: dev or view2 (with --fold).
    #[arg(long)]
    pub protocol: Option<String>,
    /// Held-out fold of view2 (0..10).
    #[arg(long)]
    pub fold: Option<usize>,
    /// `lfw`, or a folder of `<identity>/<image>` to train on.
    #[arg(long)]
    pub dataset: Option<String>,
    /// auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// SGD momentum.
    #[arg(long)]
    pub momentum: Option<f64>,
    /// Weight decay.
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Optimizer: sgd or adamw.
    #[arg(long)]
    pub optimizer: Option<String>,
    /// Linear warmup length in epochs.
    #[arg(long)]
    pub warmup_epochs: Option<f64>,
    /// Decay after warmup: poly, cosine or step.
    #[arg(long)]
    pub schedule: Option<String>,
    /// f32 or bf16 (bf16 compute, f32 master weights).
    #[arg(long)]
    pub precision: Option<String>,
    /// Seed of the initialization, data order and augmentation.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop after this many optimizer steps (0 = run all epochs).
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Data folder (LFW in `<dir>/lfw`, caches in `<dir>/cache`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

fn load_config(spec: &str) -> anyhow::Result<TrainConfig> {
    let path = Path::new(spec);
    let looks_like_file = spec.ends_with(".toml") || spec.contains('/') || spec.contains('\\');
    Ok(if looks_like_file {
        TrainConfig::from_toml_file(path)?
    } else {
        TrainConfig::preset(spec)?
    })
}

/// Applies the command-line overrides to a config (and validates the result).
pub fn apply_overrides(cfg: &mut TrainConfig, a: &TrainArgs) -> anyhow::Result<()> {
    if let Some(v) = &a.backbone {
        cfg.model.backbone = v.clone();
    }
    if let Some(v) = a.width {
        cfg.model.width = v;
    }
    if let Some(v) = a.input_size {
        cfg.model.input_size = v;
    }
    if let Some(v) = &a.loss {
        cfg.loss.kind = v.clone();
    }
    if let Some(v) = a.scale {
        cfg.loss.scale = v;
    }
    if let Some(v) = a.margin {
        cfg.loss.m = Some(v);
    }
    if let Some(v) = &a.protocol {
        cfg.data.protocol = v.clone();
    }
    if let Some(v) = a.fold {
        cfg.data.fold = Some(v);
    }
    if let Some(v) = &a.dataset {
        if v == "lfw" {
            cfg.data.source = "lfw".into();
        } else {
            cfg.data.source = "folder".into();
            cfg.data.folder = Some(PathBuf::from(v));
        }
    }
    if let Some(v) = &a.data_dir {
        cfg.data.dir = v.clone();
    }
    if let Some(v) = a.epochs {
        cfg.train.epochs = v;
    }
    if let Some(v) = a.batch_size {
        cfg.train.batch_size = v;
    }
    if let Some(v) = a.max_steps {
        cfg.train.max_steps = v;
    }
    if let Some(v) = &a.precision {
        cfg.train.precision = v.clone();
    }
    if let Some(v) = a.lr {
        cfg.optim.lr = v;
    }
    if let Some(v) = a.momentum {
        cfg.optim.momentum = v;
    }
    if let Some(v) = a.weight_decay {
        cfg.optim.weight_decay = v;
    }
    if let Some(v) = &a.optimizer {
        cfg.optim.kind = v.clone();
    }
    if let Some(v) = a.warmup_epochs {
        cfg.schedule.warmup_epochs = v;
    }
    if let Some(v) = &a.schedule {
        cfg.schedule.kind = v.clone();
    }
    if let Some(v) = a.seed {
        cfg.seed = v;
    }
    cfg.validate().context("the configuration after command-line overrides is invalid")?;
    Ok(())
}

pub fn run(a: TrainArgs) -> anyhow::Result<ExitCode> {
    let (cfg, out, resume) = match &a.resume {
        Some(dir) => {
            let file = dir.join("config.toml");
            if !file.is_file() {
                bail!("--resume {}: no config.toml there (not a run folder?)", dir.display());
            }
            let cfg = TrainConfig::from_toml_file(&file)?;
            (cfg, dir.clone(), true)
        }
        None => {
            let mut cfg = load_config(&a.config)?;
            apply_overrides(&mut cfg, &a)?;
            let out = a.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(&cfg.name));
            (cfg, out, false)
        }
    };
    let summary = train(&cfg, &RunOptions { out: out.clone(), resume, device: a.device.clone(), kernels: crate::kernel_env::from_env() })?;
    println!(
        "{} after {} steps ({} epochs, {} classes, {} images) in {:.0} s; best val accuracy {}",
        if summary.interrupted { "interrupted (checkpoint written; resume with --resume)" } else { "finished" },
        summary.steps,
        summary.epochs,
        summary.num_classes,
        summary.num_images,
        summary.elapsed_s,
        summary.best_val.map(|v| format!("{:.2}%", v * 100.0)).unwrap_or_else(|| "n/a".into()),
    );
    println!("run folder: {}", summary.run_dir.display());
    Ok(ExitCode::SUCCESS)
}
