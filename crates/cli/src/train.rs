//! `arcface train`: a config (preset name or TOML file), command-line overrides, then
//! `arcface_train::train`. `--resume runs/NAME` continues a run from its own resolved config;
//! `--protocol view2 --folds all` runs every View 2 fold as one resumable run ([`folds`]).

pub mod folds;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use arcface_backbone::select_device;
use arcface_data::Protocol;
use arcface_loss::Margin;
use arcface_train::config::DataSource;
use arcface_train::precision::Precision;
use arcface_train::{train, Decay, OptimizerConfig, RunOptions, TrainConfig};
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
    /// Centers per class (sub-center ArcFace; 1 = the plain head).
    #[arg(long)]
    pub sub_centers: Option<usize>,
    /// Label smoothing of the cross-entropy, in [0, 1).
    #[arg(long)]
    pub label_smoothing: Option<f64>,
    /// LFW protocol to train under: dev or view2 (with --fold).
    #[arg(long)]
    pub protocol: Option<String>,
    /// Held-out fold of view2 (0..10).
    #[arg(long)]
    pub fold: Option<usize>,
    /// View 2 as one run: `all`, or folds like `0,3,7`; one model per held-out fold, each
    /// evaluated on its fold, then the mean +- std (into `--out`, default `runs/<name>-view2`;
    /// rerun the same command to continue an interrupted run).
    #[arg(long, conflicts_with_all = ["fold", "resume"])]
    pub folds: Option<String>,
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
    /// Decay after warmup: poly, cosine, step (milestones from the config) or constant.
    #[arg(long)]
    pub schedule: Option<String>,
    /// f32 or bf16 (bf16 compute, f32 master weights).
    #[arg(long)]
    pub precision: Option<Precision>,
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

/// Applies the command-line overrides to a config (and validates the result).
pub fn apply_overrides(cfg: &mut TrainConfig, a: &TrainArgs) -> anyhow::Result<()> {
    let m = &mut cfg.model;
    set(&mut m.backbone, a.backbone.clone());
    set(&mut m.width, a.width);
    set(&mut m.input_size, a.input_size);
    if let Some(name) = &a.loss {
        cfg.loss.margin = Margin::from_name(name).with_context(|| {
            format!("--loss {name}: expected softmax, arcface, cosface, sphereface or combined")
        })?;
    }
    set(&mut cfg.loss.scale, a.scale);
    set(&mut cfg.loss.sub_centers, a.sub_centers);
    set(&mut cfg.loss.label_smoothing, a.label_smoothing);
    if let Some(m) = a.margin {
        let family = cfg.loss.margin.name();
        cfg.loss.margin = cfg.loss.margin.with_m(m).with_context(|| {
            format!("--margin: the {family} loss has no single margin (set it in the config file)")
        })?;
    }
    if a.protocol.is_some() || a.fold.is_some() {
        let name = a.protocol.as_deref().unwrap_or(cfg.data.protocol.name());
        if a.fold.is_some() && name != "view2" {
            bail!("--fold goes with --protocol view2 (the protocol is {name})");
        }
        cfg.data.protocol = Protocol::from_name(name, a.fold.or(cfg.data.protocol.fold()))?;
    }
    if let Some(v) = &a.dataset {
        if v == "lfw" {
            cfg.data.source = DataSource::Lfw;
        } else {
            cfg.data.source = DataSource::Folder;
            cfg.data.folder = Some(PathBuf::from(v));
        }
    }
    set(&mut cfg.data.dir, a.data_dir.clone());
    let t = &mut cfg.train;
    set(&mut t.epochs, a.epochs);
    set(&mut t.batch_size, a.batch_size);
    set(&mut t.max_steps, a.max_steps);
    set(&mut t.precision, a.precision);
    if let Some(name) = &a.optimizer {
        cfg.optim = OptimizerConfig::from_name(name)
            .with_context(|| format!("--optimizer {name}: expected sgd or adamw"))?;
    }
    if let Some(v) = a.momentum {
        match &mut cfg.optim {
            OptimizerConfig::Sgd { momentum, .. } => *momentum = v,
            other => bail!("--momentum applies to sgd, not {}", other.name()),
        }
    }
    set(cfg.optim.weight_decay_mut(), a.weight_decay);
    set(&mut cfg.schedule.lr, a.lr);
    set(&mut cfg.schedule.warmup_epochs, a.warmup_epochs);
    if let Some(name) = &a.schedule {
        cfg.schedule.decay = Decay::from_name(name)
            .with_context(|| format!("--schedule {name}: expected poly, cosine, step or constant"))?;
    }
    set(&mut cfg.seed, a.seed);
    cfg.validate().context("the configuration after command-line overrides is invalid")?;
    Ok(())
}

/// Exit code of a run stopped by SIGINT/SIGTERM after writing its checkpoint (128 + SIGINT, as
/// shells report an interrupted command).
pub const INTERRUPTED: u8 = 130;

/// `train --folds`: the recipe from the config and flags, then [`folds::run`].
fn run_folds(mut a: TrainArgs) -> anyhow::Result<ExitCode> {
    let spec = a.folds.take().unwrap_or_default();
    let mut cfg = TrainConfig::from_spec(&a.config)?;
    if a.protocol.as_deref().is_some_and(|p| p != "view2") {
        bail!("--folds goes with --protocol view2 (not {})", a.protocol.as_deref().unwrap_or_default());
    }
    if a.protocol.is_some() {
        // The fold is chosen per sub-run; any one makes the overrides valid.
        a.fold = Some(0);
    }
    apply_overrides(&mut cfg, &a)?;
    let recipe = folds::recipe(cfg)?;
    let list = folds::parse_folds(&spec, || folds::people_folds(&recipe.data.lfw_dir()))?;
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-view2", recipe.name)));
    let kernels = crate::kernel_env::from_env();
    let device = select_device(&a.device, kernels.cuda_pool)?;
    folds::run(&recipe, &list, &out, &folds::Hardware { device, kernels })
}

/// `*slot = value` when the flag was given.
fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

pub fn run(a: TrainArgs) -> anyhow::Result<ExitCode> {
    if a.folds.is_some() {
        return run_folds(a);
    }
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
            let mut cfg = TrainConfig::from_spec(&a.config)?;
            apply_overrides(&mut cfg, &a)?;
            let out = a.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(&cfg.name));
            (cfg, out, false)
        }
    };
    let kernels = crate::kernel_env::from_env();
    let device = select_device(&a.device, kernels.cuda_pool)?;
    let options = RunOptions {
        out: out.clone(),
        resume,
        device: device.clone(),
        kernels: kernels.clone(),
        progress: crate::progress::auto(),
    };
    let summary = train(&cfg, &options)?;
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
    if summary.interrupted {
        // A stopped run is not a finished one: `train && eval` must not carry on.
        return Ok(ExitCode::from(INTERRUPTED));
    }
    crate::compose::final_eval(&summary.run_dir, &cfg, &device, &kernels)?;
    Ok(ExitCode::SUCCESS)
}
