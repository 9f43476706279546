//! Exact resume, non-finite loss and checkpoint/config mismatch, through the public API.

mod common;

use arcface_train::{train_with_stop, Checkpointer, RunOptions, StopFlag, TrainError};

fn opts(dir: &std::path::Path, resume: bool) -> RunOptions {
    RunOptions {
        out: dir.to_path_buf(),
        resume,
        device: candle::Device::Cpu,
        kernels: Default::default(),
        progress: arcface_data::Progress::Silent,
    }
}

#[test]
fn resume_is_bit_identical_to_a_straight_run() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let straight = tmp.path().join("straight");
    let cfg = common::tiny(&cache, "checkpoint_every = 1", 0.1);
    let s = train_with_stop(&cfg, &opts(&straight, false), &StopFlag::new()).unwrap();
    assert_eq!(s.steps, 6);

    // Same recipe stopped after 4 steps (mid-epoch: 3 batches per epoch), then resumed.
    let split = tmp.path().join("split");
    let first = common::tiny(&cache, "checkpoint_every = 1\nmax_steps = 4", 0.1);
    assert_eq!(
        train_with_stop(&first, &opts(&split, false), &StopFlag::new())
            .unwrap()
            .steps,
        4
    );
    let latest = Checkpointer::new(split.join("checkpoints"), 3)
        .unwrap()
        .latest()
        .unwrap()
        .unwrap()
        .0;
    assert_eq!(
        (latest.step, latest.epoch, latest.batch_in_epoch),
        (4, 1, 1)
    );
    let resumed = train_with_stop(&cfg, &opts(&split, true), &StopFlag::new()).unwrap();
    assert_eq!(resumed.steps, 6);

    let a = std::fs::read(straight.join("model.safetensors")).unwrap();
    let b = std::fs::read(split.join("model.safetensors")).unwrap();
    assert!(a == b, "resumed weights differ from the straight run");
    // The metrics file reads as one run: one train line per step, no duplicates.
    let steps: Vec<u64> = arcface_eval::RunDir::new(&split).metrics()
        .unwrap()
        .iter()
        .map(|l| l.step())
        .collect();
    assert_eq!(steps, vec![1, 2, 3, 4, 5, 6]);
}

#[test]
fn stop_flag_writes_a_checkpoint_and_returns() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = common::tiny(&tmp.path().join("cache"), "", 0.1);
    let stop = StopFlag::new();
    stop.request();
    let s = train_with_stop(&cfg, &opts(&tmp.path().join("run"), false), &stop).unwrap();
    assert!(s.interrupted);
    let ck = Checkpointer::new(tmp.path().join("run/checkpoints"), 3).unwrap();
    assert_eq!(ck.latest().unwrap().unwrap().0.step, 0);
}

#[test]
fn non_finite_loss_names_the_step_and_keeps_the_last_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    // An absurd learning rate overflows the weights to inf within a few steps.
    let mut cfg = common::tiny(&tmp.path().join("cache"), "checkpoint_every = 1", 1e30);
    cfg.train.epochs = 20;
    let err = train_with_stop(&cfg, &opts(&run, false), &StopFlag::new()).unwrap_err();
    let TrainError::NonFiniteLoss { step, .. } = err else {
        panic!("expected a non-finite loss error, got {err}");
    };
    assert!(
        err.to_string().contains(&format!("at step {step}")),
        "{err}"
    );
    let ck = Checkpointer::new(run.join("checkpoints"), 3).unwrap();
    let (meta, path) = ck.latest().unwrap().unwrap();
    assert!(err.to_string().contains(&format!("(step {}), is kept", meta.step)), "{err}");
    assert_eq!(
        meta.step,
        step - 1,
        "the last good checkpoint is the step before"
    );
    let tensors =
        arcface_train::checkpoint::load_tensors(&path, &meta, &candle::Device::Cpu).unwrap();
    for (name, t) in tensors {
        let sum = t
            .to_dtype(candle::DType::F64)
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!(
            sum.is_finite(),
            "{name} is not finite in the kept checkpoint"
        );
    }
    assert!(!run.join("model.safetensors").exists());
}

#[test]
fn checkpoint_of_another_shape_is_refused_with_the_mismatches() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let cache = tmp.path().join("cache");
    let cfg = common::tiny(&cache, "max_steps = 1", 0.1);
    train_with_stop(&cfg, &opts(&run, false), &StopFlag::new()).unwrap();
    let wider = common::tiny_toml(&cache, "", 0.1).replace("width = 8", "width = 16");
    let wider =
        arcface_train::TrainConfig::from_toml_str(&wider, std::path::Path::new("w.toml")).unwrap();
    let err = train_with_stop(&wider, &opts(&run, true), &StopFlag::new()).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("does not fit the configuration"), "{msg}");
    assert!(
        msg.contains(
            "`backbone.conv1.weight`: checkpoint has [8, 3, 3, 3], model expects [16, 3, 3, 3]"
        ),
        "{msg}"
    );
}

#[test]
fn a_damaged_latest_checkpoint_falls_back_to_the_one_before() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let straight = tmp.path().join("straight");
    let cfg = common::tiny(&cache, "checkpoint_every = 1", 0.1);
    train_with_stop(&cfg, &opts(&straight, false), &StopFlag::new()).unwrap();

    // Stopped after 4 steps; then its newest checkpoint (step 4) is damaged, as a disk error
    // or a copy cut short would leave it.
    let split = tmp.path().join("split");
    let first = common::tiny(&cache, "checkpoint_every = 1\nmax_steps = 4", 0.1);
    train_with_stop(&first, &opts(&split, false), &StopFlag::new()).unwrap();
    let ck = Checkpointer::new(split.join("checkpoints"), 3).unwrap();
    let (meta, _) = ck.latest().unwrap().unwrap();
    assert_eq!(meta.step, 4);
    let tensors = split.join("checkpoints").join(&meta.tensors);
    let bytes = std::fs::read(&tensors).unwrap();
    std::fs::write(&tensors, &bytes[..bytes.len() / 2]).unwrap();

    // Resuming reads step 3's checkpoint instead, says so, and still ends where a straight run
    // ends, bit for bit, with one metrics line per step.
    let resumed = train_with_stop(&cfg, &opts(&split, true), &StopFlag::new()).unwrap();
    assert_eq!(resumed.steps, 6);
    let log = std::fs::read_to_string(split.join("train.log")).unwrap();
    assert!(log.contains("passed over a damaged checkpoint") && log.contains("step-00000004"), "{log}");
    let a = std::fs::read(straight.join("model.safetensors")).unwrap();
    let b = std::fs::read(split.join("model.safetensors")).unwrap();
    assert!(a == b, "weights resumed from the older checkpoint differ from the straight run");
    let steps: Vec<u64> = arcface_eval::RunDir::new(&split).metrics().unwrap().iter().map(|l| l.step()).collect();
    assert_eq!(steps, vec![1, 2, 3, 4, 5, 6]);

    // With every checkpoint damaged there is nothing to resume from, and the error says why.
    for (meta, _) in ck.list().unwrap() {
        std::fs::write(split.join("checkpoints").join(&meta.tensors), b"broken").unwrap();
    }
    let err = train_with_stop(&cfg, &opts(&split, true), &StopFlag::new()).unwrap_err().to_string();
    assert!(err.contains("no intact checkpoint"), "{err}");
}

#[test]
fn a_run_stopped_before_its_first_checkpoint_resumes_from_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let cfg = common::tiny(&cache, "checkpoint_every = 100", 0.1);
    let straight = tmp.path().join("straight");
    train_with_stop(&cfg, &opts(&straight, false), &StopFlag::new()).unwrap();
    // What a kill after the first metrics lines and before any checkpoint leaves behind.
    let split = tmp.path().join("split");
    std::fs::create_dir_all(split.join("checkpoints")).unwrap();
    let metrics = std::fs::read_to_string(straight.join("metrics.jsonl")).unwrap();
    std::fs::write(split.join("metrics.jsonl"), metrics.lines().take(2).map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let fresh = train_with_stop(&cfg, &opts(&split, false), &StopFlag::new()).unwrap_err().to_string();
    assert!(fresh.contains("already holds a run"), "{fresh}");
    train_with_stop(&cfg, &opts(&split, true), &StopFlag::new()).unwrap();
    let log = std::fs::read_to_string(split.join("train.log")).unwrap();
    assert!(log.contains("starts again from step 0"), "{log}");
    let a = std::fs::read(straight.join("model.safetensors")).unwrap();
    let b = std::fs::read(split.join("model.safetensors")).unwrap();
    assert!(a == b, "the restarted run differs from the straight run");
    let steps: Vec<u64> = arcface_eval::RunDir::new(&split).metrics().unwrap().iter().map(|l| l.step()).collect();
    assert_eq!(steps, vec![1, 2, 3, 4, 5, 6]);
}

#[test]
fn fresh_run_refuses_a_folder_with_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let cfg = common::tiny(&tmp.path().join("cache"), "max_steps = 1", 0.1);
    train_with_stop(&cfg, &opts(&run, false), &StopFlag::new()).unwrap();
    let err = train_with_stop(&cfg, &opts(&run, false), &StopFlag::new()).unwrap_err();
    assert!(err.to_string().contains("--resume"), "{err}");
    // Without its checkpoints, a finished run is still a run: nothing of it is replaced.
    std::fs::remove_dir_all(run.join("checkpoints")).unwrap();
    let model = std::fs::read(run.join("model.safetensors")).unwrap();
    let metrics = std::fs::read(run.join("metrics.jsonl")).unwrap();
    let err = train_with_stop(&cfg, &opts(&run, false), &StopFlag::new()).unwrap_err();
    assert!(err.to_string().contains("already holds a run"), "{err}");
    assert_eq!(std::fs::read(run.join("model.safetensors")).unwrap(), model);
    assert_eq!(std::fs::read(run.join("metrics.jsonl")).unwrap(), metrics);
}

#[test]
fn bf16_precision_runs_and_learns_finite_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = common::tiny(
        &tmp.path().join("cache"),
        "precision = \"bf16\"\nmax_steps = 3",
        0.1,
    );
    let s = train_with_stop(
        &cfg,
        &opts(&tmp.path().join("run"), false),
        &StopFlag::new(),
    )
    .unwrap();
    assert_eq!(s.steps, 3);
    assert!(s.last_loss.is_some_and(f64::is_finite));
}

#[test]
fn validation_runs_every_n_epochs_and_after_the_last() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let mut cfg = common::tiny(&tmp.path().join("cache"), "validate_every = 2", 0.1);
    cfg.train.epochs = 5;
    cfg.train.validate = true;
    train_with_stop(&cfg, &opts(&run, false), &StopFlag::new()).unwrap();
    let validated: Vec<usize> = arcface_eval::RunDir::new(&run)
        .metrics()
        .unwrap()
        .iter()
        .filter_map(|l| match l {
            arcface_eval::MetricRecord::Val { epoch, .. } => Some(*epoch),
            _ => None,
        })
        .collect();
    assert_eq!(validated, vec![1, 3, 4]);
}
