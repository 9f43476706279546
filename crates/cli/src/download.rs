//! `arcface download lfw|mtcnn`: fetch and verify a dataset (see `arcface_data::download`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use arcface_data::download::{download_lfw, download_mtcnn, DownloadOptions, Source};
use arcface_data::Progress;
use clap::{Args, ValueEnum};

/// A dataset `download` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Dataset {
    /// LFW deep-funneled images and the seven protocol files, into `<dir>/lfw/`
    /// (MD5/SHA-256 checked, extracted safely).
    Lfw,
    /// The MTCNN face-detector weights pnet.pt, rnet.pt, onet.pt (facenet-pytorch, MIT), into
    /// `<dir>/mtcnn/` (SHA-256 checked).
    Mtcnn,
}

/// Arguments of `download`.
#[derive(Args)]
#[command(
    after_help = "Datasets:\n  lfw    LFW deep-funneled images + protocol files -> <dir>/lfw/\n  \
    mtcnn  MTCNN detector weights pnet.pt, rnet.pt, onet.pt -> <dir>/mtcnn/\n\n\
    Offline: `download lfw --from ../shared/data/lfw`, `download mtcnn --from ../shared/data/mtcnn`.\n\
    Every file is checked against known digests; interrupted downloads resume; a second run \
    that finds everything verified does nothing."
)]
pub struct DownloadArgs {
    /// Dataset to fetch: `lfw` or `mtcnn`.
    #[arg(value_enum)]
    pub dataset: Dataset,
    /// Data folder; the dataset goes to `<dir>/lfw/` or `<dir>/mtcnn/`.
    #[arg(long, default_value = "data")]
    pub dir: PathBuf,
    /// Take the files from a folder (lfw: the archive + protocol files; mtcnn: the three .pt
    /// files), LFW's archive itself, or a base URL.
    #[arg(long)]
    pub from: Option<String>,
    /// Extra mirror base URLs, tried after `--from` and before the defaults (repeatable).
    #[arg(long)]
    pub mirror: Vec<String>,
    /// Use only `--from` and `--mirror`, never the official site or the known mirrors.
    #[arg(long)]
    pub no_default_sources: bool,
    /// Delete the downloaded LFW archive after a successful extraction.
    #[arg(long)]
    pub delete_archive: bool,
    /// Plain log lines instead of a progress bar.
    #[arg(long)]
    pub plain: bool,
}

pub fn run(a: DownloadArgs) -> anyhow::Result<ExitCode> {
    ignore_file_size_signal();
    let mut opts = DownloadOptions::new(&a.dir);
    opts.from = a.from.as_deref().map(|s| s.parse::<Source>()).transpose()?;
    opts.mirrors = a.mirror;
    opts.default_sources = !a.no_default_sources;
    opts.keep_archive = !a.delete_archive;
    opts.progress = if a.plain {
        Progress::Lines
    } else {
        crate::progress::auto()
    };
    match a.dataset {
        Dataset::Lfw => lfw(&opts, &a.dir),
        Dataset::Mtcnn => mtcnn(&opts, &a.dir),
    }
}

fn lfw(opts: &DownloadOptions, dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let report =
        download_lfw(opts).with_context(|| format!("downloading LFW into {}", dir.display()))?;
    if report.already_complete {
        println!(
            "LFW is already complete in {} ({} images of {} people, 7 protocol files and every image verified): nothing to do",
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

fn mtcnn(opts: &DownloadOptions, dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let report = download_mtcnn(opts)
        .with_context(|| format!("downloading the MTCNN weights into {}", dir.display()))?;
    let names: Vec<&str> = report.files.iter().map(|f| f.name.as_str()).collect();
    if report.already_complete {
        println!(
            "MTCNN weights are already complete in {} ({}, SHA-256 verified): nothing to do",
            report.dir.display(),
            names.join(", ")
        );
    } else {
        println!(
            "MTCNN weights ready in {}: {}, SHA-256 verified; {} bytes downloaded",
            report.dir.display(),
            names.join(", "),
            report.bytes_downloaded
        );
    }
    if !report.already_complete && report.extras.is_empty() {
        println!("(facenet-pytorch's weights are MIT-licensed; see https://github.com/timesler/facenet-pytorch)");
    }
    Ok(ExitCode::SUCCESS)
}

/// Under `ulimit -f` a write past the limit raises SIGXFSZ, whose default action kills the
/// process without a word; ignored, the write fails with EFBIG and the error names the file.
fn ignore_file_size_signal() {
    #[cfg(all(
        any(target_os = "linux", target_os = "macos"),
        any(
            target_arch = "x86_64",
            target_arch = "aarch64",
            target_arch = "x86",
            target_arch = "arm",
            target_arch = "riscv64"
        )
    ))]
    {
        extern "C" {
            fn signal(signum: std::ffi::c_int, handler: usize) -> usize;
        }
        const SIGXFSZ: std::ffi::c_int = 25;
        const SIG_IGN: usize = 1;
        // SAFETY: installing SIG_IGN for one signal has no preconditions; nothing else in the
        // process handles SIGXFSZ.
        unsafe {
            signal(SIGXFSZ, SIG_IGN);
        }
    }
}
