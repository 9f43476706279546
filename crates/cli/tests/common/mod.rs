//! Helpers shared by the binary's integration tests: the binary, fixture paths, a tiny
//! training config on arcface-data's lfw-mini, one tiny trained run per test binary, and
//! snapshots of folders to check that a failing command changed no file.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The `arcface` binary under test.
pub fn arcface() -> Command {
    Command::new(env!("CARGO_BIN_EXE_arcface"))
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// arcface-data's mini LFW (7 identities, real JPEGs, protocol files).
pub fn lfw_mini() -> PathBuf {
    workspace().join("crates/data/tests/fixtures/lfw-mini")
}

/// A real LFW photo (250x250 JPEG).
pub fn photo() -> PathBuf {
    lfw_mini().join("lfw-deepfunneled/Aaron_Peirsol/Aaron_Peirsol_0001.jpg")
}

/// A training config for a tiny r18-layout network (width 8, 32 px, 16-d) on lfw-mini, with
/// its image cache in `dir`; `train` holds extra `[train]` keys.
pub fn tiny_config(dir: &Path, epochs: usize, train: &str) -> PathBuf {
    let path = dir.join(format!("tiny-e{epochs}.toml"));
    std::fs::write(
        &path,
        format!(
            "name = \"tiny\"\nseed = 7\n[data]\nlfw_dir = \"{}\"\ncache_dir = \"{}\"\nalign = \"center\"\n\
             [model]\nbackbone = \"r18\"\nwidth = 8\ninput_size = 32\nnum_features = 16\n\
             [schedule]\nlr = 0.01\n[train]\nepochs = {epochs}\nbatch_size = 2\nlog_every = 1\n\
             validate = false\neval_at_end = false\n{train}",
            lfw_mini().display(),
            dir.join("cache").display()
        ),
    )
    .unwrap();
    path
}

/// A tiny trained run folder (trained once per test binary; copy it before changing it).
pub fn tiny_run() -> &'static Path {
    static RUN: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let out = arcface()
            .args(["train", "--device", "cpu", "--config"])
            .arg(tiny_config(dir.path(), 1, ""))
            .arg("--out")
            .arg(&run)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (dir, run)
    })
    .1
}

/// Copies a folder tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Every file under `dir` with its bytes.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// Asserts that every file of `before` is still there, byte for byte.
pub fn assert_unchanged(before: &BTreeMap<PathBuf, Vec<u8>>, what: &str) {
    for (path, bytes) in before {
        match std::fs::read(path) {
            Ok(now) => assert!(&now == bytes, "{what}: {} changed", path.display()),
            Err(e) => panic!("{what}: {} is gone ({e})", path.display()),
        }
    }
}

/// Exit code and stderr of a finished command.
pub fn code_and_err(out: &Output) -> (Option<i32>, String) {
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}
