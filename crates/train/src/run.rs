//! The training run: builds data, model, head, optimizer and schedule from a [`TrainConfig`],
//! runs the loop, validates after each epoch, checkpoints, and writes the run folder
//! (`config.toml`, `model.json`, `metrics.jsonl`, `train.log`, `checkpoints/`,
//! `best.safetensors`, `model.safetensors`, `eval/`) as DESIGN.md's "Runs" section describes.
//!
//! Reference: InsightFace `arcface_torch/train_v2.py` (forward, margin loss, backward, clip,
//! SGD step, poly schedule). A resumed run continues exactly: weights, buffers, optimizer
//! state and the data position are restored, and the data order is a pure function of
//! (seed, epoch).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use arcface_backbone::init::ParamKind;
use arcface_data::{
    ImageCache, Lfw, Loader, LoaderConfig, PairSet, Preprocess, Protocol, TrainSet,
};
use arcface_loss::{HeadConfig, MarginHead};
use candle::{DType, Tensor, Var};
use candle_nn::VarMap;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::checkpoint::{self, CheckpointMeta, Checkpointer};
use crate::config::TrainConfig;
use crate::error::TrainError;
use crate::metrics::{MetricsLine, RunLog};
use crate::optim::Optimizer;
use crate::precision::Precision;
use crate::schedule::LrSchedule;
use crate::signals::StopFlag;
use crate::validate::Validator;

/// How and where to run a configuration.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Run folder (conventionally `runs/<name>`).
    pub out: PathBuf,
    /// Continue from the folder's latest checkpoint.
    pub resume: bool,
    /// `auto`, `cpu` or `cuda` (see `arcface_backbone::select_device`).
    pub device: String,
}

/// What a finished (or interrupted) run reports.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Optimizer steps done in total.
    pub steps: u64,
    /// Completed epochs.
    pub epochs: usize,
    /// Training identities.
    pub num_classes: usize,
    /// Training images.
    pub num_images: usize,
    /// Mean training loss of the last logging window.
    pub last_loss: Option<f64>,
    /// Last validation accuracy and threshold.
    pub last_val: Option<(f64, f64)>,
    /// Best validation accuracy.
    pub best_val: Option<f64>,
    /// Stopped by SIGINT/SIGTERM (a checkpoint was written).
    pub interrupted: bool,
    /// Training wall time including time before a resume, seconds.
    pub elapsed_s: f64,
}

/// Trains `config` into `options.out`, stopping cleanly on SIGINT/SIGTERM.
pub fn train(config: &TrainConfig, options: &RunOptions) -> anyhow::Result<TrainSummary> {
    let stop = StopFlag::new();
    stop.install()?;
    train_with_stop(config, options, &stop)
}

/// As [`train`], with a caller-owned stop flag (no signal handlers installed).
pub fn train_with_stop(
    config: &TrainConfig,
    options: &RunOptions,
    stop: &StopFlag,
) -> anyhow::Result<TrainSummary> {
    config.validate()?;
    let run_dir = &options.out;
    std::fs::create_dir_all(run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    let ckpt = Checkpointer::new(run_dir.join("checkpoints"), config.train.keep_checkpoints)?;
    let resume_from = if options.resume {
        let latest = ckpt.latest()?;
        if latest.is_none() {
            bail!("--resume: no checkpoint in {}", ckpt.dir().display());
        }
        latest
    } else {
        if !ckpt.list()?.is_empty() {
            bail!(
                "{} already holds checkpoints: pass --resume to continue it, or choose another run folder",
                run_dir.display()
            );
        }
        None
    };
    let device =
        arcface_backbone::select_device(&options.device).context("selecting the device")?;
    let is_tty = std::io::stderr().is_terminal();
    let mut log = RunLog::open(run_dir, resume_from.as_ref().map(|(m, _)| m.step), !is_tty)?;
    checkpoint::write_atomic(&run_dir.join("config.toml"), config.to_toml().as_bytes())?;

    // Data.
    let bb_cfg = config.backbone_config().map_err(anyhow::Error::msg)?;
    let crop = match config.data.crop {
        Some([x, y, width, height]) => arcface_data::CropBox {
            x,
            y,
            width,
            height,
        },
        None => arcface_data::CropBox::LFW,
    };
    let preprocess = Preprocess {
        crop,
        size: bb_cfg.input_size,
    };
    let (train_set, test_set) = load_split(config)?;
    if train_set.num_classes() < 2 {
        bail!(
            "training set has {} identities; need at least 2",
            train_set.num_classes()
        );
    }
    write_model_json(run_dir, config, &bb_cfg, &preprocess)?;
    log.info(&format!(
        "{}: {} images of {} identities, device {:?}",
        config.name,
        train_set.len(),
        train_set.num_classes(),
        device
    ));
    let cache_dir = config
        .data
        .cache_dir
        .clone()
        .unwrap_or_else(|| config.data.dir.join("cache"));
    let progress = if is_tty {
        arcface_data::Progress::Auto
    } else {
        arcface_data::Progress::Silent
    };
    let cache =
        ImageCache::build_or_open(&train_set.paths, &preprocess, &cache_dir, progress.clone())
            .context("building the training image cache")?;
    let loader = Loader::new(
        Arc::new(cache),
        train_set.labels.clone(),
        LoaderConfig {
            batch_size: config.train.batch_size,
            seed: config.seed,
            flip: config.data.flip,
            drop_last: true,
            prefetch: config.data.prefetch.max(1),
            shuffle: true,
            threads: 0,
        },
    )?;
    let spe = loader.batches_per_epoch();
    if spe == 0 {
        bail!(
            "{} training images is less than one batch of {}",
            train_set.len(),
            config.train.batch_size
        );
    }
    let validator = match (&test_set, config.train.validate || config.train.eval_at_end) {
        (Some(pairs), true) => Some(Validator::new(pairs, &preprocess, &cache_dir, progress)?),
        _ => None,
    };

    // Model, head, optimizer.
    let bb_vm = VarMap::new();
    let model = arcface_backbone::init_varmap(&bb_cfg, &bb_vm, &device, config.seed)?;
    let head_cfg = head_config(config, train_set.num_classes(), bb_cfg.num_features);
    let head_vm = VarMap::new();
    let head = MarginHead::init_varmap(
        &head_cfg,
        &head_vm,
        "",
        DType::F32,
        &device,
        config.seed ^ 0x4ead,
    )?;
    let bb_vars = named_vars(&bb_vm);
    let head_vars = named_vars(&head_vm);
    let trainable: Vec<(String, Var)> = bb_vars
        .iter()
        .filter(|(n, _)| ParamKind::of(n).is_trainable())
        .map(|(n, v)| (format!("backbone.{n}"), v.clone()))
        .chain(
            head_vars
                .iter()
                .map(|(n, v)| (format!("head.{n}"), v.clone())),
        )
        .collect();
    let trainable_plain: Vec<Var> = trainable.iter().map(|(_, v)| v.clone()).collect();
    let mut opt = Optimizer::new(config.optimizer_config(), trainable, config.optim.lr);
    let hash = config_hash(config);

    let total_steps = {
        let full = (config.train.epochs * spe) as u64;
        if config.train.max_steps > 0 {
            full.min(config.train.max_steps)
        } else {
            full
        }
    };
    let schedule = LrSchedule {
        base_lr: config.optim.lr,
        warmup_steps: (config.schedule.warmup_epochs * spe as f64).round() as u64,
        total_steps: (config.train.epochs * spe) as u64,
        steps_per_epoch: spe as u64,
        decay: config.decay(),
    };

    let (mut step, start_epoch, start_skip, mut best_val, prior_elapsed) = match &resume_from {
        Some((meta, path)) => {
            let tensors = checkpoint::load_tensors(path, meta, &device)?;
            checkpoint::restore_vars(path, "backbone", &bb_vars, &tensors)?;
            checkpoint::restore_vars(path, "head", &head_vars, &tensors)?;
            opt.load_state(&tensors, meta.step)?;
            if meta.config_hash != hash {
                log.info("warning: the configuration changed since this checkpoint was written");
            }
            log.info(&format!(
                "resumed from {} (step {}, epoch {})",
                path.display(),
                meta.step,
                meta.epoch
            ));
            (
                meta.step,
                meta.epoch,
                meta.batch_in_epoch,
                meta.best_val,
                meta.elapsed_s,
            )
        }
        None => (0, 0, 0, None, 0.0),
    };
    let precision = Precision::new(&config.train.precision, &bb_cfg, &bb_vm, &device)?;

    // The optimizer is borrowed mutably by the loop; checkpoints read its state through this
    // snapshot, refreshed right before each save.
    let opt_state_snapshot = std::cell::RefCell::new(Vec::<(String, Tensor)>::new());
    let started = Instant::now();
    let elapsed = || prior_elapsed + started.elapsed().as_secs_f64();
    let save_ckpt =
        |step: u64, epoch: usize, batch: usize, best: Option<f64>, el: f64| -> anyhow::Result<()> {
            let (epoch, batch) = if batch >= spe {
                (epoch + 1, 0)
            } else {
                (epoch, batch)
            };
            let meta = CheckpointMeta {
                step,
                epoch,
                batch_in_epoch: batch,
                seed: config.seed,
                config_hash: hash.clone(),
                best_val: best,
                elapsed_s: el,
                tensors: String::new(),
            };
            let mut tensors: Vec<(String, Tensor)> = bb_vars
                .iter()
                .map(|(n, v)| (format!("backbone.{n}"), v.as_tensor().clone()))
                .chain(
                    head_vars
                        .iter()
                        .map(|(n, v)| (format!("head.{n}"), v.as_tensor().clone())),
                )
                .collect();
            tensors.extend(opt_state_snapshot.borrow().iter().cloned());
            ckpt.save(&meta, &tensors)?;
            Ok(())
        };

    let bar = is_tty.then(|| {
        let pb = indicatif::ProgressBar::new(total_steps);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}<{eta_precise}] {bar:30} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb.set_position(step);
        pb
    });

    let (mut win_loss, mut win_correct, mut win_n, mut win_steps) = (0f64, 0u64, 0u64, 0u64);
    let mut win_start = Instant::now();
    let mut last_loss = None;
    let mut last_val = None;
    let mut interrupted = false;
    let mut epochs_done = start_epoch;
    'outer: for epoch in start_epoch..config.train.epochs {
        let skip = if epoch == start_epoch { start_skip } else { 0 };
        for (i, batch) in loader.epoch(epoch, skip).enumerate() {
            let b = i + skip;
            if stop.is_set() {
                *opt_state_snapshot.borrow_mut() = opt.state_tensors();
                save_ckpt(step, epoch, b, best_val, elapsed())?;
                log.info(&format!(
                    "stop requested: checkpoint written at step {step}"
                ));
                interrupted = true;
                break 'outer;
            }
            if step >= total_steps {
                break 'outer;
            }
            let batch = batch.context("loading a batch")?;
            let lr = schedule.lr(step);
            opt.set_lr(lr);
            let x = batch.images.to_device(&device)?;
            let y = batch.labels.to_device(&device)?;
            let emb = precision.forward(&model, &x)?;
            let out = head.forward(&emb, &y)?;
            let loss = out.loss.to_dtype(DType::F32)?.to_scalar::<f32>()?;
            if !loss.is_finite() {
                if let Some(pb) = &bar {
                    pb.abandon();
                }
                let err = TrainError::NonFiniteLoss {
                    step: step + 1,
                    epoch,
                    loss,
                };
                log.info(&err.to_string());
                return Err(err.into());
            }
            let mut grads = out.loss.backward()?;
            if config.train.grad_clip > 0.0 {
                crate::clip::clip_grad_norm(&mut grads, &trainable_plain, config.train.grad_clip)?;
            }
            opt.step(&grads)?;
            precision.after_step()?;
            step += 1;
            let n = batch.indices.len() as u64;
            win_loss += loss as f64;
            win_correct += out.correct.to_dtype(DType::U32)?.to_scalar::<u32>()? as u64;
            win_n += n;
            win_steps += 1;
            if let Some(pb) = &bar {
                pb.set_position(step);
            }
            if step % config.train.log_every == 0 || step == total_steps {
                let secs = win_start.elapsed().as_secs_f64().max(1e-9);
                let line = MetricsLine::Train {
                    step,
                    epoch,
                    loss: win_loss / win_steps as f64,
                    accuracy: win_correct as f64 / win_n.max(1) as f64,
                    lr,
                    images_per_sec: win_n as f64 / secs,
                    elapsed_s: elapsed(),
                };
                if let MetricsLine::Train {
                    loss,
                    accuracy,
                    images_per_sec,
                    ..
                } = &line
                {
                    last_loss = Some(*loss);
                    let msg = format!(
                        "step {step}/{total_steps} epoch {epoch} loss {loss:.4} acc {:.3} lr {lr:.5} {images_per_sec:.1} img/s",
                        accuracy
                    );
                    match &bar {
                        Some(pb) => {
                            pb.set_message(format!("loss {loss:.3} acc {accuracy:.3} lr {lr:.4} {images_per_sec:.0} img/s"));
                            log.info_file_only(&msg);
                        }
                        None => log.info(&msg),
                    }
                }
                log.metrics(&line)?;
                (win_loss, win_correct, win_n, win_steps) = (0.0, 0, 0, 0);
                win_start = Instant::now();
            }
            if config.train.checkpoint_every > 0
                && step % config.train.checkpoint_every == 0
                && step < total_steps
            {
                *opt_state_snapshot.borrow_mut() = opt.state_tensors();
                save_ckpt(step, epoch, b + 1, best_val, elapsed())?;
            }
        }
        epochs_done = epoch + 1;
        if stop.is_set() {
            // Stop now rather than after a validation pass; resuming redoes nothing.
            *opt_state_snapshot.borrow_mut() = opt.state_tensors();
            save_ckpt(step, epoch + 1, 0, best_val, elapsed())?;
            log.info(&format!("stop requested: checkpoint written at step {step}"));
            interrupted = true;
            break;
        }
        if config.train.validate {
            if let Some(v) = &validator {
                let m = v.evaluate(&model, &device, config.train.eval_batch_size)?;
                log.metrics(&MetricsLine::Val {
                    step,
                    epoch,
                    accuracy: m.accuracy_mean,
                    threshold: m.threshold,
                })?;
                log.info(&format!(
                    "epoch {epoch}: val accuracy {:.4} +- {:.4} (threshold {:.4})",
                    m.accuracy_mean, m.accuracy_std, m.threshold
                ));
                last_val = Some((m.accuracy_mean, m.threshold));
                if best_val.is_none_or(|b| m.accuracy_mean > b) {
                    best_val = Some(m.accuracy_mean);
                    save_backbone(&bb_vm, &run_dir.join("best.safetensors"))?;
                }
            }
        }
        *opt_state_snapshot.borrow_mut() = opt.state_tensors();
        save_ckpt(step, epoch + 1, 0, best_val, elapsed())?;
    }
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    if !interrupted {
        // A max_steps stop inside an epoch still leaves a checkpoint at the very end.
        if ckpt.latest()?.map(|(m, _)| m.step) != Some(step) {
            *opt_state_snapshot.borrow_mut() = opt.state_tensors();
            let (e, b) = ((step / spe as u64) as usize, (step % spe as u64) as usize);
            save_ckpt(step, e, b, best_val, elapsed())?;
        }
        save_backbone(&bb_vm, &run_dir.join("model.safetensors"))?;
        log.info(&format!(
            "wrote {}",
            run_dir.join("model.safetensors").display()
        ));
        if config.train.eval_at_end && test_set.is_some() {
            let lfw_dir = config
                .data
                .lfw_dir
                .clone()
                .unwrap_or_else(|| config.data.dir.join("lfw"));
            let protocol = match config.data.fold {
                Some(k) if config.data.protocol == "view2" => format!("view2:{k}"),
                _ => config.data.protocol.clone(),
            };
            let mut eo = arcface_eval::EvalOptions::new(
                Some(arcface_eval::ModelSource::Run(run_dir.clone())),
                arcface_eval::PairSource::Lfw { lfw_dir, protocol },
            );
            eo.device = options.device.clone();
            eo.embed.batch_size = config.train.eval_batch_size;
            eo.embed.progress = is_tty;
            let r = arcface_eval::eval_run(&eo).context("final evaluation")?;
            log.info(&format!("final eval written to {}", r.out_dir.display()));
        }
    }
    let summary = TrainSummary {
        run_dir: run_dir.clone(),
        steps: step,
        epochs: epochs_done,
        num_classes: train_set.num_classes(),
        num_images: train_set.len(),
        last_loss,
        last_val,
        best_val,
        interrupted,
        elapsed_s: elapsed(),
    };
    log.info(&format!(
        "done: {}",
        serde_json::to_string(&summary).unwrap_or_default()
    ));
    Ok(summary)
}

/// The training identities and, for LFW protocols, the test pairs.
pub fn load_split(config: &TrainConfig) -> anyhow::Result<(TrainSet, Option<PairSet>)> {
    let d = &config.data;
    if d.source == "folder" {
        let root = d.folder.clone().unwrap_or_default();
        let set = arcface_data::scan_folder(&root)
            .with_context(|| format!("scanning {}", root.display()))?;
        return Ok((set.filter_min_images(d.min_images), None));
    }
    let lfw_dir = d.lfw_dir.clone().unwrap_or_else(|| d.dir.join("lfw"));
    let lfw =
        Lfw::open(&lfw_dir).with_context(|| format!("opening LFW at {}", lfw_dir.display()))?;
    let protocol = Protocol::from_name(&d.protocol, d.fold)?;
    let split = lfw.split(&protocol)?;
    Ok((
        split.train.filter_min_images(d.min_images),
        Some(split.test),
    ))
}

/// The margin head a config trains with, for `num_classes` identities and `embedding_size`-d
/// embeddings.
pub fn head_config(config: &TrainConfig, num_classes: usize, embedding_size: usize) -> HeadConfig {
    HeadConfig {
        num_classes,
        embedding_size,
        scale: config.loss.scale,
        margin: margin(config),
        grad_mode: if config.loss.grad_mode == "straight_through" {
            arcface_loss::GradMode::StraightThrough
        } else {
            arcface_loss::GradMode::Exact
        },
    }
}

fn margin(config: &TrainConfig) -> arcface_loss::Margin {
    use arcface_loss::Margin;
    let l = &config.loss;
    let m = config.margin_value();
    match l.kind.as_str() {
        "softmax" => Margin::Softmax,
        "cosface" => Margin::CosFace { m },
        "sphereface" => Margin::SphereFace { m },
        "combined" => Margin::Combined {
            m1: l.m1,
            m2: l.m2,
            m3: l.m3,
        },
        _ => Margin::ArcFace {
            m,
            easy_margin: l.easy_margin,
        },
    }
}

fn named_vars(vm: &VarMap) -> Vec<(String, Var)> {
    let data = vm.data().lock().unwrap_or_else(|e| e.into_inner());
    let mut v: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// SHA-256 of everything that shapes the model or the data.
pub fn config_hash(config: &TrainConfig) -> String {
    let key = serde_json::json!({
        "seed": config.seed, "data": config.data, "model": config.model, "loss": config.loss,
    });
    hex::encode(Sha256::digest(key.to_string().as_bytes()))
}

fn write_model_json(
    run_dir: &Path,
    config: &TrainConfig,
    bb: &arcface_backbone::Config,
    preprocess: &Preprocess,
) -> anyhow::Result<()> {
    let v = serde_json::json!({
        "backbone": bb,
        "preprocess": preprocess,
        "loss": config.loss.kind,
        "protocol": if config.data.source == "folder" { "folder".to_string() } else { config.data.protocol.clone() },
        "fold": config.data.fold,
    });
    let bytes = serde_json::to_vec_pretty(&v)?;
    checkpoint::write_atomic(&run_dir.join("model.json"), &bytes)?;
    Ok(())
}

fn save_backbone(vm: &VarMap, path: &Path) -> anyhow::Result<()> {
    let tmp = path.with_extension("safetensors.tmp");
    arcface_backbone::save_weights(vm, &tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}
