//! Downloading and extracting LFW (deep-funneled images and the seven protocol files).
//!
//! [`download_lfw`] produces `<dir>/lfw/lfw-deepfunneled/<Name>/<Name>_NNNN.jpg` (13233 images
//! of 5749 people) and `pairs.txt people.txt pairsDevTrain.txt pairsDevTest.txt
//! peopleDevTrain.txt peopleDevTest.txt lfw-names.txt` in `<dir>/lfw/`
//! (Huang et al., "Labeled Faces in the Wild", UMass TR 07-49; <http://vis-www.cs.umass.edu/lfw/>).
//!
//! **Sources**, tried in order for each file until one succeeds (see [`sources`]): the copy
//! already in `<dir>/lfw/`; `from` (a folder holding the archive and the txt files, a single
//! archive with the txt files taken from beside it when present, or a base URL); each of
//! `mirrors` (base URLs); then, unless `default_sources` is off, the official site
//! (https, then http) and, for `pairs.txt`, `pairsDevTrain.txt` and `pairsDevTest.txt`, the
//! figshare copies scikit-learn uses. Downloads go to `<file>.part` and resume with an HTTP
//! `Range` request (restarting when the server ignores it); interrupted transfers are retried
//! `retries` times.
//!
//! **Checksum policy.** Each protocol file must match one of its known digests
//! ([`KnownChecksums`]: the official MD5s published by the LFW site, and SHA-256s); a file
//! that matches none is rejected (that source counts as failed; if no source gives a good
//! copy, the error names the expected and computed digests). The archive is accepted when its
//! MD5 or SHA-256 matches a known value (the official archive's MD5
//! `68331da3eb755a505a502b5aacb3c201`, or the SHA-256 of the repack in `../shared/data/lfw`).
//! A repack has other digests, so an archive matching none is *still used*, with a warning,
//! and then its extracted contents decide: in every case the tree must hold exactly the
//! images `lfw-names.txt` (checksum-verified) announces (each `<Name>/<Name>_NNNN.jpg`,
//! N = 1..count, nothing else, each starting with the JPEG marker), otherwise the archive is
//! rejected. [`DownloadReport::archive`] says which check accepted it.
//!
//! **Extraction** is safe ([`extract`]): absolute paths, `..`, links and special files are
//! refused; it happens in `<dir>/lfw/.extract-tmp-*`, renamed into place only when complete
//! and verified, and removed on any error. A corrupt or truncated gzip is an error naming the
//! archive. **Idempotence:** `<dir>/lfw/.download-complete.json` records the digests and the
//! image count; a run that finds the marker, the seven files with those (still accepted)
//! digests and the complete tree does nothing and says so. Two runs on the same `dir` at the
//! same time are not supported.

pub mod checksum;
pub mod error;
pub mod extract;
mod http;
pub mod layout;
pub mod sources;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use checksum::{Checksum, Digests, KnownChecksums, ARCHIVE_NAME, IMAGES_DIR, PROTOCOL_FILES};
pub use error::DownloadError;
pub use layout::{ArchiveRecord, ArchiveVerification, FileRecord};
pub use sources::Source;

use crate::progress::Progress;
use layout::Marker;
use sources::Candidate;

/// What to download, from where, and how.
#[derive(Debug, Clone)]
pub struct DownloadOptions {
    /// The data folder; LFW goes to `<dir>/lfw/`.
    pub dir: PathBuf,
    /// `--from`: a folder, an archive, or a base URL, tried before mirrors and defaults.
    pub from: Option<Source>,
    /// Extra base URLs serving the LFW file names, tried after `from`.
    pub mirrors: Vec<String>,
    /// Whether to fall back to the official site and the known per-file copies.
    pub default_sources: bool,
    /// Where transfer and extraction progress goes (byte counts; a summary line per file
    /// unless silent).
    pub progress: Progress,
    /// Known-good digests (the real LFW values by default).
    pub checksums: KnownChecksums,
    /// Retries of an interrupted transfer (each resumes with a Range request).
    pub retries: usize,
    /// Pause before retry k is k times this.
    pub retry_delay: Duration,
    /// Network read timeout.
    pub timeout: Duration,
    /// Keep a downloaded archive in `<dir>/lfw/` after extraction.
    pub keep_archive: bool,
}

impl DownloadOptions {
    /// Defaults for `dir`: default sources, real checksums, 3 retries, archive kept.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DownloadOptions {
            dir: dir.into(),
            from: None,
            mirrors: Vec::new(),
            default_sources: true,
            progress: Progress::Lines,
            checksums: KnownChecksums::default(),
            retries: 3,
            retry_delay: Duration::from_secs(2),
            timeout: Duration::from_secs(60),
            keep_archive: true,
        }
    }
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions::new("data")
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadReport {
    /// `<dir>/lfw`.
    pub lfw_dir: PathBuf,
    /// `<dir>/lfw/lfw-deepfunneled`.
    pub images_dir: PathBuf,
    /// True when everything was already in place and nothing was done.
    pub already_complete: bool,
    /// People in the tree.
    pub identities: usize,
    /// Images in the tree.
    pub images: usize,
    /// The protocol files.
    pub files: Vec<FileRecord>,
    /// The archive and how it was accepted.
    pub archive: ArchiveRecord,
    /// Bytes received over the network in this run.
    pub bytes_downloaded: u64,
}

/// Downloads, verifies and extracts LFW into `<opts.dir>/lfw/` (see the module docs).
pub fn download_lfw(opts: &DownloadOptions) -> Result<DownloadReport, DownloadError> {
    let lfw_dir = opts.dir.join(crate::lfw::LFW_SUBDIR);
    let images_dir = lfw_dir.join(IMAGES_DIR);
    match &opts.from {
        Some(Source::Folder(p)) if !p.is_dir() => {
            return Err(DownloadError::Options(format!(
                "--from {}: no such folder",
                p.display()
            )))
        }
        Some(Source::Archive(p)) if !p.is_file() => {
            return Err(DownloadError::Options(format!(
                "--from {}: no such file",
                p.display()
            )))
        }
        _ => {}
    }
    if let Some(report) = check_complete(opts, &lfw_dir, &images_dir) {
        tracing::info!(
            "LFW already complete in {} ({} images of {} people, files verified): nothing to do",
            lfw_dir.display(),
            report.images,
            report.identities
        );
        return Ok(report);
    }
    std::fs::create_dir_all(&lfw_dir).map_err(|e| DownloadError::io("creating", &lfw_dir, e))?;
    remove_stale_tmp(&lfw_dir)?;
    let fetcher = http::Fetcher::new(opts.timeout, opts.retries, opts.retry_delay, opts.progress.clone());
    let mut downloaded = 0u64;

    let mut files = Vec::new();
    for name in PROTOCOL_FILES {
        let cands = sources::candidates(
            name,
            &lfw_dir,
            opts.from.as_ref(),
            &opts.mirrors,
            opts.default_sources,
        );
        let accepted = opts.checksums.for_file(name);
        let record = first_success(name, &cands, |cand| {
            obtain_file(&fetcher, name, cand, &lfw_dir, accepted, &mut downloaded)
        })?;
        files.push(record);
    }

    let names_path = lfw_dir.join("lfw-names.txt");
    let names = layout::read_names(&names_path)?;
    let cands = sources::candidates(
        ARCHIVE_NAME,
        &lfw_dir,
        opts.from.as_ref(),
        &opts.mirrors,
        opts.default_sources,
    );
    let (archive, (identities, images)) = first_success(ARCHIVE_NAME, &cands, |cand| {
        let (path, record) = obtain_archive(
            &fetcher,
            cand,
            &lfw_dir,
            &opts.checksums.archive,
            &mut downloaded,
        )?;
        let downloaded_here = matches!(cand, Candidate::Remote(_));
        let counts = match extract_into_place(&path, &lfw_dir, &names, &names_path, &opts.progress) {
            Ok(counts) => counts,
            Err(e) => {
                if downloaded_here {
                    // A bad download is worth nothing; the next source (or run) fetches anew.
                    let _ = std::fs::remove_file(&path);
                }
                return Err(e);
            }
        };
        if downloaded_here && !opts.keep_archive {
            std::fs::remove_file(&path).map_err(|e| DownloadError::io("removing", &path, e))?;
        }
        Ok((record, counts))
    })?;

    let marker = Marker {
        format: 1,
        identities,
        images,
        files,
        archive,
    };
    layout::write_marker(&lfw_dir, &marker)?;
    tracing::info!(
        "LFW ready in {}: {images} images of {identities} people",
        lfw_dir.display()
    );
    Ok(DownloadReport {
        lfw_dir,
        images_dir,
        already_complete: false,
        identities,
        images,
        files: marker.files,
        archive: marker.archive,
        bytes_downloaded: downloaded,
    })
}

/// The report of a previous complete run, when everything it recorded still holds.
fn check_complete(
    opts: &DownloadOptions,
    lfw_dir: &Path,
    images_dir: &Path,
) -> Option<DownloadReport> {
    let marker = layout::read_marker(lfw_dir)?;
    for name in PROTOCOL_FILES {
        let record = marker.files.iter().find(|f| f.name == name)?;
        let digests = checksum::digest_file(&lfw_dir.join(name)).ok()?;
        if digests != record.digests || digests.verify(opts.checksums.for_file(name), name).is_err()
        {
            tracing::info!("{name} changed since the last run: redoing");
            return None;
        }
    }
    let names_path = lfw_dir.join("lfw-names.txt");
    let names = layout::read_names(&names_path).ok()?;
    match layout::verify_tree(images_dir, &names, &names_path, images_dir) {
        Ok((identities, images)) if (identities, images) == (marker.identities, marker.images) => {
            Some(DownloadReport {
                lfw_dir: lfw_dir.to_path_buf(),
                images_dir: images_dir.to_path_buf(),
                already_complete: true,
                identities,
                images,
                files: marker.files,
                archive: marker.archive,
                bytes_downloaded: 0,
            })
        }
        Ok(_) => None,
        Err(e) => {
            tracing::info!("previous extraction incomplete ({e}): redoing");
            None
        }
    }
}

/// Tries `f` on each candidate; the first success wins. Disk-full stops at once.
fn first_success<T>(
    file: &str,
    cands: &[Candidate],
    mut f: impl FnMut(&Candidate) -> Result<T, DownloadError>,
) -> Result<T, DownloadError> {
    let mut attempts = Vec::new();
    for cand in cands {
        if let Candidate::Local(p) = cand {
            if !p.is_file() {
                continue;
            }
        }
        match f(cand) {
            Ok(v) => return Ok(v),
            Err(e @ DownloadError::DiskFull { .. }) => return Err(e),
            Err(e) => {
                tracing::warn!("{file} from {cand}: {e}");
                attempts.push((cand.to_string(), e));
            }
        }
    }
    match attempts.len() {
        0 => Err(DownloadError::NoSource {
            file: file.to_string(),
        }),
        1 => Err(attempts.remove(0).1),
        _ => Err(DownloadError::AllSourcesFailed {
            file: file.to_string(),
            attempts,
        }),
    }
}

fn part_path(dest: &Path) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

fn rename(from: &Path, to: &Path) -> Result<(), DownloadError> {
    std::fs::rename(from, to).map_err(|e| DownloadError::io("renaming to", to, e))
}

/// Gets one protocol file from `cand` into `<lfw_dir>/<name>`, verified.
fn obtain_file(
    fetcher: &http::Fetcher,
    name: &str,
    cand: &Candidate,
    lfw_dir: &Path,
    accepted: &[Checksum],
    downloaded: &mut u64,
) -> Result<FileRecord, DownloadError> {
    let dest = lfw_dir.join(name);
    let part = part_path(&dest);
    let origin = cand.to_string();
    let checked = match cand {
        Candidate::Local(src) if *src == dest => dest.clone(),
        Candidate::Local(src) => {
            std::fs::copy(src, &part).map_err(|e| DownloadError::io("copying to", &part, e))?;
            part.clone()
        }
        Candidate::Remote(url) => {
            *downloaded += fetcher.fetch(url, &part, name)?;
            part.clone()
        }
    };
    let digests = checksum::digest_file(&checked)?;
    if let Err(e) = digests.verify(accepted, &format!("{name} from {origin}")) {
        if checked == part {
            // A wrong prefix would poison every later resume.
            let _ = std::fs::remove_file(&part);
        }
        return Err(e);
    }
    if checked == part {
        rename(&part, &dest)?;
    }
    Ok(FileRecord {
        name: name.to_string(),
        origin,
        digests,
    })
}

/// Gets the archive from `cand`: a local one is used in place, a remote one downloaded to
/// `<lfw_dir>/lfw-deepfunneled.tgz`. Returns its path and how far its checksum vouches for it.
fn obtain_archive(
    fetcher: &http::Fetcher,
    cand: &Candidate,
    lfw_dir: &Path,
    accepted: &[Checksum],
    downloaded: &mut u64,
) -> Result<(PathBuf, ArchiveRecord), DownloadError> {
    let path = match cand {
        Candidate::Local(p) => p.clone(),
        Candidate::Remote(url) => {
            let dest = lfw_dir.join(ARCHIVE_NAME);
            let part = part_path(&dest);
            *downloaded += fetcher.fetch(url, &part, ARCHIVE_NAME)?;
            rename(&part, &dest)?;
            dest
        }
    };
    let digests = checksum::digest_file(&path)?;
    let verified_by = match digests.find_match(accepted) {
        Some(c) => {
            tracing::info!(
                "{}: checksum {c} matches a known-good value",
                path.display()
            );
            ArchiveVerification::Checksum(c.clone())
        }
        None => {
            tracing::warn!(
                "{}: sha256 {} (md5 {}) matches no known LFW archive; accepting it only if its \
                 contents match lfw-names.txt exactly",
                path.display(),
                digests.sha256,
                digests.md5
            );
            ArchiveVerification::Contents
        }
    };
    Ok((
        path,
        ArchiveRecord {
            origin: cand.to_string(),
            digests,
            verified_by,
        },
    ))
}

/// Extracts into a temporary folder, verifies the tree, and renames it into place.
fn extract_into_place(
    archive: &Path,
    lfw_dir: &Path,
    names: &std::collections::BTreeMap<String, u32>,
    names_path: &Path,
    progress: &Progress,
) -> Result<(usize, usize), DownloadError> {
    let tmp = lfw_dir.join(format!(".extract-tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(|e| DownloadError::io("creating", &tmp, e))?;
    let result = (|| {
        let summary = extract::unpack_tgz(archive, &tmp, progress)?;
        if let Some(bad) = summary.bad_jpegs.first() {
            return Err(DownloadError::ContentMismatch {
                origin: archive.to_path_buf(),
                names: names_path.to_path_buf(),
                reason: format!(
                    "{} .jpg file(s) are not JPEG data, e.g. {bad}",
                    summary.bad_jpegs.len()
                ),
            });
        }
        let counts = layout::verify_tree(&tmp.join(IMAGES_DIR), names, names_path, archive)?;
        let final_dir = lfw_dir.join(IMAGES_DIR);
        if final_dir.exists() {
            std::fs::remove_dir_all(&final_dir)
                .map_err(|e| DownloadError::io("removing", &final_dir, e))?;
        }
        rename(&tmp.join(IMAGES_DIR), &final_dir)?;
        Ok(counts)
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// Removes `.extract-tmp-*` folders left by killed runs.
fn remove_stale_tmp(lfw_dir: &Path) -> Result<(), DownloadError> {
    let entries =
        std::fs::read_dir(lfw_dir).map_err(|e| DownloadError::io("listing", lfw_dir, e))?;
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(".extract-tmp-")
        {
            let p = entry.path();
            std::fs::remove_dir_all(&p).map_err(|e| DownloadError::io("removing", &p, e))?;
        }
    }
    Ok(())
}
