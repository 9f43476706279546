//! Fault campaign for training (issue 17): a tiny run is killed with SIGKILL at many points
//! chosen by a seeded generator (after a random delay; inside a checkpoint write, caught by
//! its temporary file; right after a metrics append), sometimes several times over, resumed
//! with `--resume` each time, and must end bit for bit equal to an uninterrupted run, with a
//! metrics log that reads as one run. Also a damaged latest checkpoint and a disk that fills
//! up (a file-size limit, several sizes) before resuming.
//!
//! `cargo test` runs 24 trials (at least 20 kill points; seconds, the run is tiny); the long
//! campaign is ignored: `ARCFACE_FAULT_KILLS=200 cargo test -p arcface-cli --test
//! fault_campaign -- --ignored --nocapture` (default 200 trials).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// splitmix64: a seeded sequence, so a failing campaign replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Where a kill lands.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// After this many milliseconds.
    Delay(u64),
    /// While the n-th checkpoint write is under way (its temporary file exists).
    CheckpointWrite(u64),
    /// Right after the n-th append to metrics.jsonl.
    MetricsAppend(u64),
}

const EPOCHS: usize = 4;
/// 7 images of 3 people in batches of 2: 3 steps an epoch.
const STEPS: usize = 3 * EPOCHS;

fn train(config: &Path, run: &Path, resume: bool) -> Command {
    let mut c = arcface();
    c.args(["train", "--device", "cpu"]);
    if resume {
        // A resumed run reads the config it wrote into its folder.
        c.arg("--resume").arg(run);
    } else {
        c.arg("--config").arg(config).arg("--out").arg(run);
    }
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

fn has_tmp(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|d| d.flatten().any(|e| e.file_name().to_string_lossy().ends_with(".tmp")))
}

/// Starts a run (fresh or resumed) and kills it at `at`; false when it finished first.
fn run_and_kill(config: &Path, run: &Path, resume: bool, at: KillAt) -> bool {
    let mut child = train(config, run, resume).stderr(Stdio::null()).spawn().unwrap();
    let start = Instant::now();
    let metrics = run.join("metrics.jsonl");
    let (mut seen, mut was_writing, mut last_len) = (0u64, false, std::fs::metadata(&metrics).map_or(0, |m| m.len()));
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let fire = match at {
            KillAt::Delay(ms) => start.elapsed() >= Duration::from_millis(ms),
            KillAt::CheckpointWrite(n) => {
                let writing = has_tmp(&run.join("checkpoints"));
                if writing && !was_writing {
                    seen += 1;
                }
                was_writing = writing;
                writing && seen >= n
            }
            KillAt::MetricsAppend(n) => {
                let len = std::fs::metadata(&metrics).map_or(0, |m| m.len());
                if len != last_len {
                    seen += 1;
                    last_len = len;
                }
                seen >= n
            }
        };
        if fire {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return true;
        }
        if start.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("{at:?}: the run neither finished nor was killed in 120 s");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Completes a stopped run as a user would: `--resume` from its newest checkpoint; a run that
/// stopped before its first checkpoint has nothing to resume, and once it has logged a step
/// a fresh run refuses the folder ("already holds a run ... or delete it first"), so the user
/// deletes it and starts again.
fn finish(config: &Path, run: &Path) {
    let has_checkpoint = std::fs::read_dir(run.join("checkpoints"))
        .is_ok_and(|d| d.flatten().any(|e| e.file_name().to_string_lossy().ends_with(".json")));
    let mut out = train(config, run, has_checkpoint).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if !has_checkpoint && err.contains("already holds a run") {
        std::fs::remove_dir_all(run).unwrap();
        out = train(config, run, false).output().unwrap();
    }
    assert!(out.status.success(), "{}: {}", run.display(), String::from_utf8_lossy(&out.stderr));
}

/// The final weights and the metrics log's train steps, which must read as one run.
fn check_against(reference: &[u8], run: &Path, what: &str) {
    let got = std::fs::read(run.join("model.safetensors")).unwrap();
    assert!(got == reference, "{what}: the resumed weights differ from the uninterrupted run");
    let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let steps: Vec<u64> = log
        .lines()
        .filter(|l| l.contains("\"kind\":\"train\""))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, (1..=STEPS as u64).collect::<Vec<_>>(), "{what}: metrics.jsonl");
}

struct Campaign {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
    reference: Vec<u8>,
    straight_ms: u64,
}

impl Campaign {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let config = tiny_config(&root, EPOCHS, "checkpoint_every = 1\nkeep_checkpoints = 2\n");
        let straight = root.join("straight");
        let start = Instant::now();
        let out = train(&config, &straight, false).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // Timed again now that the image cache exists, as the killed runs will find it.
        let again = root.join("straight-again");
        let start2 = Instant::now();
        let out = train(&config, &again, false).output().unwrap();
        assert!(out.status.success());
        let straight_ms = start2.elapsed().as_millis() as u64;
        let _ = start;
        let reference = std::fs::read(straight.join("model.safetensors")).unwrap();
        check_against(&reference, &again, "a second straight run");
        Campaign { _tmp: tmp, root, config, reference, straight_ms }
    }

    /// `kills` trials: each kills a run one to three times at seeded points, then finishes it.
    fn kills(&self, seed: u64, kills: usize) -> usize {
        let mut rng = Rng(seed);
        let mut landed = 0;
        for trial in 0..kills {
            let run = self.root.join(format!("kill-{seed}-{trial}"));
            let mut plan = Vec::new();
            for k in 0..1 + rng.below(3) {
                let at = match rng.below(3) {
                    0 => KillAt::Delay(rng.below(self.straight_ms)),
                    1 => KillAt::CheckpointWrite(1 + rng.below(STEPS as u64)),
                    _ => KillAt::MetricsAppend(1 + rng.below(STEPS as u64)),
                };
                let resume = k > 0 || run.join("checkpoints").exists() && std::fs::read_dir(run.join("checkpoints")).unwrap().next().is_some();
                let killed = run_and_kill(&self.config, &run, resume && run.join("checkpoints").exists(), at);
                plan.push((at, killed));
                landed += killed as usize;
                if !killed {
                    break;
                }
            }
            eprintln!("trial {trial}: {plan:?}");
            if !run.join("model.safetensors").exists() {
                finish(&self.config, &run);
            }
            check_against(&self.reference, &run, &format!("seed {seed} trial {trial} {plan:?}"));
        }
        landed
    }
}

#[test]
fn killed_runs_resume_to_the_uninterrupted_weights() {
    let c = Campaign::new();
    let landed = c.kills(17, 24);
    assert!(landed >= 20, "only {landed} kills landed before the runs finished");
}

#[test]
#[ignore = "the long campaign: ARCFACE_FAULT_KILLS=200 cargo test -p arcface-cli --test fault_campaign -- --ignored"]
fn long_fault_campaign() {
    let kills: usize = std::env::var("ARCFACE_FAULT_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let c = Campaign::new();
    let landed = c.kills(2026, kills);
    eprintln!("long campaign: {landed} kill points landed over {kills} trials; every run resumed bit-identical");
}

#[test]
fn a_damaged_latest_checkpoint_and_a_full_disk_still_resume_exactly() {
    let c = Campaign::new();
    // The newest checkpoint cut short (a disk error, a copy interrupted): resume falls back to
    // the one before and still reaches the same weights.
    let run = c.root.join("damaged");
    assert!(run_and_kill(&c.config, &run, false, KillAt::MetricsAppend(6)));
    let ckpts = run.join("checkpoints");
    let mut tensors: Vec<PathBuf> = std::fs::read_dir(&ckpts)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    tensors.sort();
    let newest = tensors.last().expect("a checkpoint was written");
    let bytes = std::fs::read(newest).unwrap();
    std::fs::write(newest, &bytes[..bytes.len() / 2]).unwrap();
    finish(&c.config, &run);
    check_against(&c.reference, &run, "damaged latest checkpoint");

    // The disk fills up (a file-size limit: writes past it fail with EFBIG once SIGXFSZ is
    // ignored) at several sizes, during a fresh run and during a resume; then resume freely.
    for kb in [4u64, 16, 64, 160] {
        let run = c.root.join(format!("full-{kb}"));
        for resume in [false, true] {
            let script = format!("trap '' XFSZ; ulimit -f {kb}; exec \"$0\" \"$@\"");
            let mut cmd = Command::new("bash");
            cmd.args(["-c", &script]).arg(env!("CARGO_BIN_EXE_arcface"));
            cmd.args(["train", "--device", "cpu"]);
            if resume {
                cmd.arg("--resume").arg(&run);
            } else {
                cmd.arg("--config").arg(&c.config).arg("--out").arg(&run);
            }
            let out = cmd.output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() {
                assert_eq!(out.status.code(), Some(2), "{kb} KB: {err}");
                assert!(err.contains("File too large") || err.contains("no intact checkpoint"), "{kb} KB: {err}");
                assert!(!err.contains("panicked"), "{kb} KB: {err}");
            }
            if !run.join("checkpoints").exists() {
                break;
            }
        }
        if !run.join("model.safetensors").exists() {
            finish(&c.config, &run);
        }
        check_against(&c.reference, &run, &format!("disk full at {kb} KB"));
    }
}
