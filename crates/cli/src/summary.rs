//! `arcface summary`: a backbone's parameters and MACs per image.

use std::process::ExitCode;

use anyhow::anyhow;
use arcface_backbone::Config;
use clap::Args;

/// Arguments of `summary`.
#[derive(Args)]
pub struct SummaryArgs {
    /// Backbone preset: r18, r34, r50 or r100.
    #[arg(long, default_value = "r50")]
    pub backbone: String,
    /// Channels of the first stage (64 for the standard models).
    #[arg(long)]
    pub width: Option<usize>,
    /// Input side in pixels (112 for the standard models; a multiple of 16).
    #[arg(long)]
    pub input_size: Option<usize>,
}

pub fn run(a: SummaryArgs) -> anyhow::Result<ExitCode> {
    let mut cfg = Config::from_name(&a.backbone)
        .ok_or_else(|| anyhow!("unknown backbone `{}` (r18, r34, r50, r100)", a.backbone))?;
    if let Some(w) = a.width {
        cfg = cfg.with_width(w);
    }
    if let Some(s) = a.input_size {
        cfg = cfg.with_input_size(s);
    }
    cfg.validate().map_err(|e| anyhow!("invalid backbone config: {e}"))?;
    let params = cfg.num_params();
    let macs = cfg.macs();
    println!("backbone    IResNet {} (layers {:?})", a.backbone, cfg.layers);
    println!("input       3 x {0} x {0}", cfg.input_size);
    println!("width       {} (stages {:?})", cfg.width, (0..4).map(|i| cfg.stage_channels(i)).collect::<Vec<_>>());
    println!("embedding   {}", cfg.num_features);
    println!("parameters  {} ({:.2} M)", params, params as f64 / 1e6);
    println!("MACs/image  {} ({:.3} G)", macs, macs as f64 / 1e9);
    Ok(ExitCode::SUCCESS)
}
