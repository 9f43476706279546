//! Minimal driver of the library, for measuring presets without the CLI:
//! `cargo run --release -p arcface-train --example train -- <preset|file.toml> [--out DIR]
//! [--device auto|cpu|cuda] [--resume] [--epochs N] [--max-steps N]`.

use anyhow::Context;
use arcface_train::{train, RunOptions, TrainConfig};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args
        .first()
        .context("usage: train <preset|file.toml> [--out DIR] [--device D] [--resume]")?;
    let mut cfg = TrainConfig::from_spec(which)?;
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if let Some(e) = flag("--epochs") {
        cfg.train.epochs = e.parse()?;
    }
    if let Some(m) = flag("--max-steps") {
        cfg.train.max_steps = m.parse()?;
    }
    cfg.validate()?;
    let opts = RunOptions {
        out: flag("--out")
            .map(Into::into)
            .unwrap_or_else(|| format!("runs/{}", cfg.name).into()),
        resume: args.iter().any(|a| a == "--resume"),
        device: arcface_backbone::select_device(&flag("--device").unwrap_or_else(|| "auto".into()), Default::default())?,
        kernels: Default::default(),
        progress: Default::default(),
    };
    let summary = train(&cfg, &opts)?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}
