//! Downloading datasets: LFW (deep-funneled images and the seven protocol files) and the MTCNN
//! detector weights ([`mtcnn`]). A dataset is a list of files with their known digests
//! ([`files::Dataset`]), fetched by one routine ([`files`]); LFW adds its archive, extracted
//! and checked against `lfw-names.txt`.
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
//! archive; a write that fails (disk full, `ulimit -f`) names the file and the space needed.
//! **Idempotence:** `<dir>/lfw/.download-complete.json` records the digests, the image count
//! and each image's size and SHA-256; a run that finds the marker, the seven files with those
//! (still accepted) digests and the complete tree with unchanged images does nothing and says
//! so. A changed or missing image or file is named in a warning and repaired by redoing the
//! work (the archive is re-extracted from the kept copy or `from`; when no source is left, the
//! error says what changed). `--from` is checked first: a path that is not there, a file that
//! is not a gzip archive, or a folder lacking files with no other source allowed, is an error
//! saying what was found and what was expected. Two runs on the same `dir` at the same time are
//! not supported.

pub mod checksum;
pub mod error;
pub mod extract;
pub mod files;
mod http;
pub mod layout;
pub mod mtcnn;
pub mod sources;
pub mod text;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use checksum::{Checksum, Digests, KnownChecksums, ARCHIVE_NAME, IMAGES_DIR, PROTOCOL_FILES};
pub use error::DownloadError;
pub use files::{download_files, Dataset, FilesReport, KnownFile};
pub use layout::{ArchiveRecord, ArchiveVerification, FileRecord, ImageRecord};
pub use mtcnn::{download_mtcnn, mtcnn_weights, MtcnnWeights};
pub use sources::{DefaultSources, Source};

use crate::progress::Progress;
use files::{part_path, rename, Getter};
use layout::Marker;
use sources::Candidate;

/// What to download, from where, and how.
#[derive(Debug, Clone)]
pub struct DownloadOptions {
    /// The data folder; LFW goes to `<dir>/lfw/`, the MTCNN weights to `<dir>/mtcnn/`.
    pub dir: PathBuf,
    /// `--from`: a folder, an archive, or a base URL, tried before mirrors and defaults.
    pub from: Option<Source>,
    /// Extra base URLs serving the dataset's file names, tried after `from`.
    pub mirrors: Vec<String>,
    /// Whether to fall back to the dataset's default sources (for LFW the official site and
    /// the known per-file copies).
    pub default_sources: bool,
    /// Where transfer and extraction progress goes (byte counts; a summary line per file
    /// unless silent).
    pub progress: Progress,
    /// Known-good digests of LFW (the real values by default).
    pub checksums: KnownChecksums,
    /// Retries of an interrupted transfer (each resumes with a Range request).
    pub retries: usize,
    /// Pause before retry k is k times this.
    pub retry_delay: Duration,
    /// Network read timeout.
    pub timeout: Duration,
    /// Keep a downloaded LFW archive in `<dir>/lfw/` after extraction.
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
    files::check_from_exists(opts)?;
    let why = match check_complete(opts, &lfw_dir, &images_dir) {
        Check::Complete(report) => {
            tracing::info!(
                "LFW already complete in {} ({} images of {} people, files and images verified): nothing to do",
                lfw_dir.display(),
                report.images,
                report.identities
            );
            return Ok(*report);
        }
        Check::Redo(why) => why,
    };
    match fetch_and_extract(opts, &lfw_dir, &images_dir) {
        Err(e) => match why {
            Some(changed) if !matches!(e, DownloadError::Options(_)) => {
                Err(DownloadError::Repair {
                    changed,
                    error: Box::new(e),
                })
            }
            _ => Err(e),
        },
        ok => ok,
    }
}

impl Dataset {
    /// LFW's protocol files with the given digests, its archive, and its default sources.
    pub fn lfw(checksums: &KnownChecksums) -> Self {
        Dataset {
            name: "LFW".into(),
            subdir: crate::lfw::LFW_SUBDIR.into(),
            files: PROTOCOL_FILES
                .iter()
                .map(|name| KnownFile {
                    name: name.to_string(),
                    accepted: checksums.for_file(name).to_vec(),
                })
                .collect(),
            archive: Some(ARCHIVE_NAME.into()),
            extras: Vec::new(),
            defaults: DefaultSources::lfw(),
        }
    }
}

fn fetch_and_extract(
    opts: &DownloadOptions,
    lfw_dir: &Path,
    images_dir: &Path,
) -> Result<DownloadReport, DownloadError> {
    let dataset = Dataset::lfw(&opts.checksums);
    let getter = Getter::new(opts, &dataset, lfw_dir);
    getter.check_from()?;
    std::fs::create_dir_all(lfw_dir).map_err(|e| DownloadError::io("creating", lfw_dir, e))?;
    remove_stale_tmp(lfw_dir)?;

    let mut files = Vec::new();
    for file in &dataset.files {
        files.push(getter.get(file)?);
    }

    let names_path = lfw_dir.join("lfw-names.txt");
    let names = layout::read_names(&names_path)?;
    let cands = getter.candidates(ARCHIVE_NAME);
    let (archive, (identities, images, records)) =
        getter.first_success(ARCHIVE_NAME, &cands, |cand| {
            let (path, record) = obtain_archive(&getter, cand, lfw_dir, &opts.checksums.archive)?;
            let downloaded_here = matches!(cand, Candidate::Remote(_));
            let extracted =
                match extract_into_place(&path, lfw_dir, &names, &names_path, &opts.progress) {
                    Ok(extracted) => extracted,
                    Err(e) => {
                        if downloaded_here && !e.is_out_of_space() {
                            // A bad download is worth nothing; the next source (or run) fetches anew.
                            let _ = std::fs::remove_file(&path);
                        }
                        return Err(e);
                    }
                };
            if downloaded_here && !opts.keep_archive {
                std::fs::remove_file(&path).map_err(|e| DownloadError::io("removing", &path, e))?;
            }
            Ok((record, extracted))
        })?;

    let marker = Marker {
        format: layout::MARKER_FORMAT,
        identities,
        images,
        files,
        archive,
        image_digests: records,
    };
    layout::write_marker(lfw_dir, &marker)?;
    tracing::info!(
        "LFW ready in {}: {images} images of {identities} people",
        lfw_dir.display()
    );
    Ok(DownloadReport {
        lfw_dir: lfw_dir.to_path_buf(),
        images_dir: images_dir.to_path_buf(),
        already_complete: false,
        identities,
        images,
        files: marker.files,
        archive: marker.archive,
        bytes_downloaded: getter.downloaded.get(),
    })
}

/// What a previous run left.
enum Check {
    /// Everything it recorded still holds.
    Complete(Box<DownloadReport>),
    /// Work to do; with what changed since the previous complete run, if there was one.
    Redo(Option<String>),
}

/// Whether a previous complete run's files and images are all still as recorded.
fn check_complete(opts: &DownloadOptions, lfw_dir: &Path, images_dir: &Path) -> Check {
    let Some(mut marker) = layout::read_marker(lfw_dir) else {
        return Check::Redo(None);
    };
    let redo = |why: String| {
        tracing::warn!("{why}: repairing");
        Check::Redo(Some(why))
    };
    for name in PROTOCOL_FILES {
        let path = lfw_dir.join(name);
        let Some(record) = marker.files.iter().find(|f| f.name == name) else {
            return Check::Redo(None);
        };
        match checksum::digest_file(&path) {
            Ok(d)
                if d == record.digests && d.verify(opts.checksums.for_file(name), name).is_ok() => {
            }
            Ok(_) => {
                return redo(format!(
                    "{} changed since it was verified",
                    text::path(&path)
                ))
            }
            Err(e) => return redo(e.to_string()),
        }
    }
    let names_path = lfw_dir.join("lfw-names.txt");
    let Ok(names) = layout::read_names(&names_path) else {
        return Check::Redo(None);
    };
    let (identities, images) =
        match layout::verify_tree(images_dir, &names, &names_path, images_dir) {
            Ok(counts) if counts == (marker.identities, marker.images) => counts,
            Ok(_) => return Check::Redo(None),
            Err(e) => return redo(format!("the extracted images are incomplete ({e})")),
        };
    if marker.image_digests.is_empty() {
        // A format-1 marker: record the images as they are, so later runs can check them.
        match layout::record_tree(images_dir) {
            Ok(records) => {
                marker.image_digests = records;
                marker.format = layout::MARKER_FORMAT;
                if let Err(e) = layout::write_marker(lfw_dir, &marker) {
                    tracing::warn!("could not record the image digests: {e}");
                }
            }
            Err(e) => return redo(e.to_string()),
        }
    } else {
        let changed = layout::changed_files(images_dir, &marker.image_digests);
        if !changed.is_empty() || marker.image_digests.len() != images {
            let listed: Vec<String> = changed
                .iter()
                .take(3)
                .map(|(rel, how)| format!("{} ({how})", text::escape(rel, 200)))
                .collect();
            return redo(format!(
                "{} extracted image(s) in {} differ from the archive: {}{}",
                changed.len(),
                text::path(images_dir),
                listed.join(", "),
                if changed.len() > 3 { ", ..." } else { "" }
            ));
        }
    }
    Check::Complete(Box::new(DownloadReport {
        lfw_dir: lfw_dir.to_path_buf(),
        images_dir: images_dir.to_path_buf(),
        already_complete: true,
        identities,
        images,
        files: marker.files,
        archive: marker.archive,
        bytes_downloaded: 0,
    }))
}

/// Gets the archive from `cand`: a local one is used in place, a remote one downloaded to
/// `<lfw_dir>/lfw-deepfunneled.tgz`. Returns its path and how far its checksum vouches for it.
fn obtain_archive(
    getter: &Getter,
    cand: &Candidate,
    lfw_dir: &Path,
    accepted: &[Checksum],
) -> Result<(PathBuf, ArchiveRecord), DownloadError> {
    let path = match cand {
        Candidate::Local(p) => p.clone(),
        Candidate::Remote(url) => {
            let dest = lfw_dir.join(ARCHIVE_NAME);
            let part = part_path(&dest);
            let n = getter.fetcher.fetch(url, &part, ARCHIVE_NAME)?;
            getter.downloaded.set(getter.downloaded.get() + n);
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

/// Extracts into a temporary folder, verifies the tree, and renames it into place. Returns
/// (people, images, each image's digests by its path under `lfw-deepfunneled/`).
fn extract_into_place(
    archive: &Path,
    lfw_dir: &Path,
    names: &BTreeMap<String, u32>,
    names_path: &Path,
    progress: &Progress,
) -> Result<(usize, usize, BTreeMap<String, ImageRecord>), DownloadError> {
    let tmp = lfw_dir.join(format!(".extract-tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let result = (|| {
        std::fs::create_dir(&tmp).map_err(|e| DownloadError::io("creating", &tmp, e))?;
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
        let (identities, images) =
            layout::verify_tree(&tmp.join(IMAGES_DIR), names, names_path, archive)?;
        let prefix = format!("{IMAGES_DIR}/");
        let records: BTreeMap<String, ImageRecord> = summary
            .written
            .into_iter()
            .filter_map(|(rel, r)| Some((rel.strip_prefix(&prefix)?.to_string(), r)))
            .collect();
        let final_dir = lfw_dir.join(IMAGES_DIR);
        if final_dir.exists() {
            std::fs::remove_dir_all(&final_dir)
                .map_err(|e| DownloadError::io("removing", &final_dir, e))?;
        }
        rename(&tmp.join(IMAGES_DIR), &final_dir)?;
        Ok((identities, images, records))
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    result.map_err(|e| match e {
        DownloadError::Io { .. }
        | DownloadError::DiskFull { .. }
        | DownloadError::FileTooLarge { .. } => DownloadError::Extracting {
            archive: archive.to_path_buf(),
            into: lfw_dir.to_path_buf(),
            needed: extract::gzip_uncompressed_size(archive),
            error: Box::new(e),
        },
        e => e,
    })
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
