//! `cargo xtask`: the project's command front.
//!
//! It stays light on purpose (no dependencies, builds in seconds): every heavy command is
//! forwarded to the release-built `arcface` binary (`crates/cli`), since debug-built candle is
//! far too slow for real work. `pipeline` chains download, train, eval and report for one
//! config; `ci` is what `.ci/run` runs.
//!
//! Cargo features for the forwarded build come from `--features F` placed before the command
//! (`cargo xtask --features cuda train ...`) or from the `ARCFACE_FEATURES` environment variable.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

const HELP: &str = "\
cargo xtask [--features F] <command> [args...]

Commands forwarded to the release-built `arcface` binary (each has --help):
  download   fetch and verify LFW (official site, mirrors, or --from <folder|archive|url>)
  preview    write a PNG grid of preprocessed training crops
  train      train a backbone with a margin head (configs/*.toml, flags override)
  eval       evaluate a run or weights on LFW pairs, a pairs file, a .bin or a score file
  verify     decide whether two photos show the same person (exit 0 same, 1 different, 2 error)
  embed      write embeddings of images or a .npy batch to a .npy file
  summary    print a backbone's parameters and MACs per image
  report     one HTML + markdown report across runs
  study      the softmax-vs-ArcFace study (train both, evaluate, figures)
  bench      training throughput (images/s), optionally against PyTorch

Local commands:
  pipeline [--config quick] [--from SRC] [--out runs/NAME] [--device D]
             download LFW, train the config on its protocol, evaluate it, write the report
  help       this text
";

fn main() {
    let mut args: Vec<OsString> = env::args_os().skip(1).collect();
    let mut features = env::var("ARCFACE_FEATURES").unwrap_or_default();
    while args.first().is_some_and(|a| a == "--features") {
        if args.len() < 2 {
            die("--features needs a value, e.g. --features cuda");
        }
        features = args[1].to_string_lossy().into_owned();
        args.drain(..2);
    }
    let Some(cmd) = args.first().map(|a| a.to_string_lossy().into_owned()) else {
        print!("{HELP}");
        exit(2);
    };
    let code = match cmd.as_str() {
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            0
        }
        "pipeline" => pipeline(&features, &args[1..]),
        "download" | "preview" | "train" | "eval" | "verify" | "embed" | "summary" | "report"
        | "study" | "bench" => forward(&features, &args),
        other => {
            eprintln!("error: unknown command `{other}`\n");
            eprint!("{HELP}");
            2
        }
    };
    exit(code);
}

fn die(msg: &str) -> ! {
    eprintln!("error: {msg}");
    exit(2);
}

fn root() -> PathBuf {
    // xtask/ sits one level below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask has a parent").to_path_buf()
}

/// Runs `cargo run --release -p arcface-cli -- args` from the workspace root and returns its
/// exit code (the binary's own codes, such as `verify`'s 0/1/2, pass through unchanged).
fn forward(features: &str, args: &[OsString]) -> i32 {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root()).args(["run", "--release", "--quiet", "-p", "arcface-cli"]);
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

/// download -> train -> eval -> report for one config, stopping at the first failure.
fn pipeline(features: &str, args: &[OsString]) -> i32 {
    let mut config = "quick".to_string();
    let mut from: Option<OsString> = None;
    let mut out: Option<OsString> = None;
    let mut device: Option<OsString> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next().cloned().unwrap_or_else(|| die(&format!("{name} needs a value")))
        };
        match a.to_string_lossy().as_ref() {
            "--config" => config = value("--config").to_string_lossy().into_owned(),
            "--from" => from = Some(value("--from")),
            "--out" => out = Some(value("--out")),
            "--device" => device = Some(value("--device")),
            "-h" | "--help" => {
                println!("cargo xtask pipeline [--config quick] [--from SRC] [--out runs/NAME] [--device D]");
                return 0;
            }
            other => die(&format!("pipeline: unknown argument `{other}`")),
        }
    }
    let name = Path::new(&config).file_stem().map(|s| s.to_string_lossy().into_owned());
    let out = out.unwrap_or_else(|| format!("runs/{}", name.unwrap_or_else(|| "run".into())).into());

    let mut download: Vec<OsString> = vec!["download".into(), "lfw".into()];
    if let Some(f) = from {
        download.extend(["--from".into(), f]);
    }
    let mut train: Vec<OsString> =
        vec!["train".into(), "--config".into(), config.into(), "--out".into(), out.clone()];
    if let Some(d) = &device {
        train.extend(["--device".into(), d.clone()]);
    }
    let mut eval: Vec<OsString> = vec!["eval".into(), "--run".into(), out.clone()];
    if let Some(d) = &device {
        eval.extend(["--device".into(), d.clone()]);
    }
    let report: Vec<OsString> = vec!["report".into(), out.clone(), "--out".into(), "runs/report".into()];

    for (step, argv) in [("download", download), ("train", train), ("eval", eval), ("report", report)] {
        eprintln!("== pipeline: {step}");
        let code = forward(features, &argv);
        if code != 0 {
            eprintln!("pipeline: `{step}` failed (exit {code}); earlier steps' outputs are kept");
            return code;
        }
    }
    eprintln!("== pipeline: done; report in runs/report/report.html, run in {}", out.to_string_lossy());
    0
}
