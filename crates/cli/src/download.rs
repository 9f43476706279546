//! `arcface download lfw`: fetch, verify and extract LFW (see `arcface_data::download`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use arcface_data::download::{download_lfw, DownloadOptions, Source};
use arcface_data::Progress;
use clap::Args;

/// Arguments of `download`.
#[derive(Args)]
pub struct DownloadArgs {
    /// Dataset to fetch (only `lfw` for now).
    pub dataset: String,
    /// Data folder; LFW goes to `<dir>/lfw/`.
    #[arg(long, default_value = "data")]
    pub dir: PathBuf,
    /// Take the files from a folder (archive + protocol files), a single archive, or a base URL.
    #[arg(long)]
    pub from: Option<String>,
    /// Extra mirror base URLs, tried after `--from` and before the defaults (repeatable).
    #[arg(long)]
    pub mirror: Vec<String>,
    /// Use only `--from` and `--mirror`, never the official site or the known mirrors.
    #[arg(long)]
    pub no_default_sources: bool,
    /// Delete the downloaded archive after a successful extraction.
    #[arg(long)]
    pub delete_archive: bool,
    /// Plain log lines instead of a progress bar.
    #[arg(long)]
    pub plain: bool,
}

pub fn run(a: DownloadArgs) -> anyhow::Result<ExitCode> {
    if a.dataset != "lfw" {
        bail!("unknown dataset `{}`: only `lfw` can be downloaded", a.dataset);
    }
    let mut opts = DownloadOptions::new(&a.dir);
    opts.from = a.from.as_deref().map(|s| s.parse::<Source>()).transpose()?;
    opts.mirrors = a.mirror;
    opts.default_sources = !a.no_default_sources;
    opts.keep_archive = !a.delete_archive;
    opts.progress = if a.plain { Progress::Lines } else { crate::progress::auto() };
    let report = download_lfw(&opts).with_context(|| format!("downloading LFW into {}", a.dir.display()))?;
    if report.already_complete {
        println!(
            "LFW is already complete in {} ({} images of {} people, 7 protocol files verified): nothing to do",
            report.lfw_dir.display(),
            report.images,
            report.identities
        );
    } else {
        println!(
            "LFW ready in {}: {} images of {} people, {} protocol files; {} bytes downloaded",
            report.lfw_dir.display(),
            report.images,
            report.identities,
            report.files.len(),
            report.bytes_downloaded
        );
    }
    Ok(ExitCode::SUCCESS)
}
