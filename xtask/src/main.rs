//! `cargo xtask`: the project's command front.
//!
//! It stays light on purpose (no dependencies, builds in seconds) and knows no command: every
//! argument goes unchanged to the release-built `arcface` binary (`crates/cli`, where the
//! whole command line is declared), since debug-built candle is far too slow for real work.
//! The binary runs in the caller's working directory, so relative paths mean what the caller
//! meant. `cargo xtask` alone, `help` or `--help` print the binary's help.
//!
//! Cargo features for that build come from `--features F` placed before the command
//! (`cargo xtask --features cuda train ...`) or from the `ARCFACE_FEATURES` environment variable.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

fn main() {
    let mut args: Vec<OsString> = env::args_os().skip(1).collect();
    let mut features = env::var("ARCFACE_FEATURES").unwrap_or_default();
    while args.first().is_some_and(|a| a == "--features") {
        let Some(value) = args.get(1) else {
            eprintln!("error: --features needs a value, e.g. --features cuda");
            exit(2);
        };
        features = value.to_string_lossy().into_owned();
        args.drain(..2);
    }
    if args.is_empty() || args[0] == "help" {
        args = vec!["--help".into()];
    }
    exit(forward(&features, &args));
}

/// The workspace manifest: xtask/ sits one level below the workspace root.
fn workspace_manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml")
}

/// Runs `cargo run --release -p arcface-cli -- args` in the caller's working directory and
/// returns its exit code (the binary's own codes, such as `verify`'s 0/1/2, pass through).
fn forward(features: &str, args: &[OsString]) -> i32 {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["run", "--release", "--quiet", "-p", "arcface-cli", "--manifest-path"])
        .arg(workspace_manifest());
    if !features.is_empty() {
        cmd.args(["--features", features]);
    }
    cmd.arg("--").args(args);
    match cmd.status() {
        Ok(status) => status.code().unwrap_or(130),
        Err(e) => {
            eprintln!("error: could not start cargo: {e}");
            2
        }
    }
}
