//! Process-level behaviour: SIGTERM makes a training process write a checkpoint and exit 0;
//! after `kill -9` the run resumes from its last checkpoint. The child is this test binary
//! re-run on the ignored `child_entry` test, configured through an environment variable.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use arcface_train::{Checkpointer, RunOptions, StopFlag, TrainConfig};

const CHILD_ENV: &str = "ARCFACE_TRAIN_CHILD";

#[test]
#[ignore = "entry point of the child process spawned by the other tests"]
fn child_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (cfg, run) = spec.split_once('|').expect("CONFIG|RUN_DIR");
    let cfg = TrainConfig::from_toml_file(cfg).expect("child config");
    let opts = RunOptions {
        out: PathBuf::from(run),
        resume: false,
        device: candle::Device::Cpu,
        kernels: Default::default(),
        progress: arcface_data::Progress::Silent,
    };
    let summary = arcface_train::train(&cfg, &opts).expect("child training");
    assert!(
        summary.interrupted,
        "the child is meant to be stopped by a signal"
    );
}

/// Writes a long-running tiny config and starts the child on it.
fn spawn_child(tmp: &Path) -> (Child, PathBuf, PathBuf) {
    let cfg_path = tmp.join("long.toml");
    std::fs::write(
        &cfg_path,
        common::tiny_toml(&tmp.join("cache"), "", 0.05).replace("epochs = 2", "epochs = 100000"),
    )
    .unwrap();
    let run = tmp.join("run");
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_entry",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            CHILD_ENV,
            format!("{}|{}", cfg_path.display(), run.display()),
        )
        .spawn()
        .unwrap();
    (child, cfg_path, run)
}

/// Waits until the run has a checkpoint at step >= `min_step` (epoch ends write one).
fn wait_for_checkpoint(run: &Path, min_step: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        if let Ok(ck) = Checkpointer::new(run.join("checkpoints"), 100) {
            if let Ok(Some((m, _))) = ck.latest() {
                if m.step >= min_step {
                    return m.step;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no checkpoint appeared in {}", run.display());
}

#[test]
fn sigterm_writes_a_checkpoint_and_exits_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, _, run) = spawn_child(tmp.path());
    wait_for_checkpoint(&run, 3);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "child exited with {exit:?}");
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("stop requested"))
        .expect("stop line in train.log");
    let step: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    let latest = Checkpointer::new(run.join("checkpoints"), 100)
        .unwrap()
        .latest()
        .unwrap()
        .unwrap()
        .0;
    assert_eq!(latest.step, step, "the stop checkpoint is the latest");
}

#[test]
fn after_kill_9_the_run_resumes_from_its_last_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, cfg_path, run) = spawn_child(tmp.path());
    wait_for_checkpoint(&run, 3);
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let latest = Checkpointer::new(run.join("checkpoints"), 100)
        .unwrap()
        .latest()
        .unwrap()
        .unwrap()
        .0;
    let mut cfg = TrainConfig::from_toml_file(&cfg_path).unwrap();
    cfg.train.max_steps = latest.step + 2;
    let opts = RunOptions {
        out: run.clone(),
        resume: true,
        device: candle::Device::Cpu,
        kernels: Default::default(),
        progress: arcface_data::Progress::Silent,
    };
    let s = arcface_train::train_with_stop(&cfg, &opts, &StopFlag::new()).unwrap();
    assert_eq!(s.steps, latest.step + 2);
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    assert!(
        log.contains(&format!("(step {}, epoch {})", latest.step, latest.epoch)),
        "{log}"
    );
}
