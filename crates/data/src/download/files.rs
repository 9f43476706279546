//! A dataset as a list of files with their known digests ([`Dataset`]), and the one routine
//! that gets each file into `<dir>/<subdir>/`: from the copy already there, `--from`, the
//! mirrors, then the dataset's default sources ([`super::sources`]), each copy verified
//! before it is renamed into place. LFW's protocol files and the MTCNN weights both go through
//! it; LFW's archive reuses its candidates and its `--from` checks.
//!
//! A copy that matches none of a file's accepted digests is rejected and removed (a wrong
//! prefix would poison every later resume); the next source is tried. `--from` is checked
//! before any work: a missing path, a file where a folder is expected, a file that is not the
//! archive, or (when it is the only source) a folder lacking files is an error that says what
//! was found there and what was expected.

use std::cell::Cell;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::checksum::{self, Checksum};
use super::error::DownloadError;
use super::http::Fetcher;
use super::layout::FileRecord;
use super::sources::{self, Candidate, DefaultSources, Source};
use super::text;
use super::DownloadOptions;

/// One file of a dataset and the digests it may have (any one match accepts it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownFile {
    /// The file name, the same in every source and in the destination folder.
    pub name: String,
    /// Accepted digests; a copy matching none is rejected.
    pub accepted: Vec<Checksum>,
}

/// What a dataset is made of and where it comes from by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// Its name in messages ("MTCNN weights").
    pub name: String,
    /// Its folder under the data folder (`mtcnn`).
    pub subdir: String,
    /// The files, each verified against its digests.
    pub files: Vec<KnownFile>,
    /// A file obtained by its own step (LFW's archive): a `--from` file stands for it, and a
    /// `--from` folder must hold it.
    pub archive: Option<String>,
    /// Files copied from a `--from` folder when present, unverified (a licence).
    pub extras: Vec<String>,
    /// Sources tried after `--from` and the mirrors, unless the default sources are off.
    pub defaults: DefaultSources,
}

impl Dataset {
    /// Every file name a `--from` folder should hold, the archive first.
    pub fn names(&self) -> Vec<&str> {
        self.archive
            .iter()
            .map(String::as_str)
            .chain(self.files.iter().map(|f| f.name.as_str()))
            .collect()
    }

    /// What a usable `--from` is, for messages.
    pub fn expected_from(&self) -> String {
        let names: Vec<&str> = self.files.iter().map(|f| f.name.as_str()).collect();
        match &self.archive {
            Some(a) => format!(
                "a folder holding {a} (a gzip-compressed tar, whose first bytes are 1f 8b) and {}, \
                 or that archive with those files beside it, or a base URL serving them",
                names.join(", ")
            ),
            None => format!(
                "a folder holding {}, or a base URL serving them",
                names.join(", ")
            ),
        }
    }
}

/// What [`download_files`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesReport {
    /// `<dir>/<subdir>`.
    pub dir: PathBuf,
    /// True when every file was already in place and verified, and nothing was fetched.
    pub already_complete: bool,
    /// The files, verified.
    pub files: Vec<FileRecord>,
    /// The extras copied from `--from` (in this run or an earlier one).
    pub extras: Vec<PathBuf>,
    /// Bytes received over the network in this run.
    pub bytes_downloaded: u64,
}

/// Fetches and verifies every file of `dataset` into `<opts.dir>/<subdir>/` (see the module
/// docs); does nothing when they are all there with an accepted digest.
pub fn download_files(
    opts: &DownloadOptions,
    dataset: &Dataset,
) -> Result<FilesReport, DownloadError> {
    let dir = opts.dir.join(&dataset.subdir);
    check_from_exists(opts)?;
    if let Some(files) = verified_in_place(&dir, dataset) {
        let extras = copy_extras(opts, dataset, &dir)?;
        tracing::info!(
            "{} already complete in {} ({} files verified): nothing to do",
            dataset.name,
            dir.display(),
            files.len()
        );
        return Ok(FilesReport {
            dir,
            already_complete: true,
            files,
            extras,
            bytes_downloaded: 0,
        });
    }
    let getter = Getter::new(opts, dataset, &dir);
    getter.check_from()?;
    std::fs::create_dir_all(&dir).map_err(|e| DownloadError::io("creating", &dir, e))?;
    let mut files = Vec::new();
    for file in &dataset.files {
        files.push(getter.get(file)?);
    }
    let extras = copy_extras(opts, dataset, &dir)?;
    tracing::info!("{} ready in {}", dataset.name, dir.display());
    Ok(FilesReport {
        dir,
        already_complete: false,
        files,
        extras,
        bytes_downloaded: getter.downloaded.get(),
    })
}

/// The records of every file when all are in `dir` with an accepted digest.
fn verified_in_place(dir: &Path, dataset: &Dataset) -> Option<Vec<FileRecord>> {
    let mut out = Vec::new();
    for file in &dataset.files {
        let path = dir.join(&file.name);
        let digests = checksum::digest_file(&path).ok()?;
        if digests.verify(&file.accepted, &file.name).is_err() {
            tracing::info!(
                "{} differs from its known digest: fetching it again",
                path.display()
            );
            return None;
        }
        out.push(FileRecord {
            name: file.name.clone(),
            origin: path.display().to_string(),
            digests,
        });
    }
    Some(out)
}

/// Copies the dataset's extras from a `--from` folder when present; returns those in `dir`.
fn copy_extras(
    opts: &DownloadOptions,
    dataset: &Dataset,
    dir: &Path,
) -> Result<Vec<PathBuf>, DownloadError> {
    let mut out = Vec::new();
    for name in &dataset.extras {
        let dest = dir.join(name);
        if let Some(Source::Folder(from)) = &opts.from {
            let src = from.join(name);
            if src.is_file() && !same_bytes(&src, &dest) {
                let part = part_path(&dest);
                copy_file(&src, &part).inspect_err(|_| {
                    let _ = std::fs::remove_file(&part);
                })?;
                rename(&part, &dest)?;
            }
        }
        if dest.is_file() {
            out.push(dest);
        }
    }
    Ok(out)
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    matches!((std::fs::read(a), std::fs::read(b)), (Ok(x), Ok(y)) if x == y)
}

/// A `--from` path that does not exist is an options error, before anything else.
pub(super) fn check_from_exists(opts: &DownloadOptions) -> Result<(), DownloadError> {
    match &opts.from {
        Some(Source::Folder(p)) | Some(Source::Archive(p)) if !p.exists() => Err(
            DownloadError::Options(format!("--from {}: no such file or folder", text::path(p))),
        ),
        _ => Ok(()),
    }
}

/// Gets a dataset's files from its sources, counting the bytes downloaded.
pub(super) struct Getter<'a> {
    opts: &'a DownloadOptions,
    dataset: &'a Dataset,
    dir: PathBuf,
    pub(super) fetcher: Fetcher,
    pub(super) downloaded: Cell<u64>,
}

impl<'a> Getter<'a> {
    pub(super) fn new(opts: &'a DownloadOptions, dataset: &'a Dataset, dir: &Path) -> Self {
        Getter {
            opts,
            dataset,
            dir: dir.to_path_buf(),
            fetcher: Fetcher::new(
                opts.timeout,
                opts.retries,
                opts.retry_delay,
                opts.progress.clone(),
            ),
            downloaded: Cell::new(0),
        }
    }

    /// Whether `--from` is the only source (no mirror, no default).
    fn only_from(&self) -> bool {
        self.opts.mirrors.is_empty() && !self.opts.default_sources
    }

    /// Refuses a `--from` that cannot provide the dataset, saying what it is and what was
    /// expected; a folder lacking files is refused only when nothing else could provide them.
    pub(super) fn check_from(&self) -> Result<(), DownloadError> {
        let expected = self.dataset.expected_from();
        let (folder, found_prefix) = match &self.opts.from {
            Some(Source::Archive(p)) => {
                let head = text::head_of(p, 64);
                let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                let what = format!(
                    "a file of {size} bytes starting with {}",
                    text::excerpt(&head)
                );
                match &self.dataset.archive {
                    None => {
                        return Err(DownloadError::FromUnusable {
                            from: p.clone(),
                            found: format!("{what}, not a folder"),
                            expected,
                        })
                    }
                    Some(_) if !head.starts_with(&[0x1f, 0x8b]) => {
                        return Err(DownloadError::FromUnusable {
                            from: p.clone(),
                            found: format!("{what}, not a gzip-compressed archive"),
                            expected,
                        })
                    }
                    Some(_) => match p.parent() {
                        Some(dir) => (dir.to_path_buf(), "beside the archive, "),
                        None => return Ok(()),
                    },
                }
            }
            Some(Source::Folder(p)) => (p.clone(), ""),
            _ => return Ok(()),
        };
        let folder = if folder.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            folder
        };
        let missing: Vec<String> = self
            .dataset
            .names()
            .into_iter()
            .filter(|n| !self.available(n))
            .map(str::to_string)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let found = format!("{found_prefix}{}", text::describe_folder(&folder));
        if self.only_from() {
            return Err(DownloadError::FromLacks {
                from: folder,
                missing,
                found,
                expected,
            });
        }
        tracing::warn!(
            "--from {} lacks {} ({found}): trying the other sources",
            text::path(&folder),
            missing.join(", ")
        );
        Ok(())
    }

    /// Whether `name` is already in place or in a local `--from`.
    fn available(&self, name: &str) -> bool {
        self.candidates(name)
            .iter()
            .any(|c| matches!(c, Candidate::Local(p) if p.is_file()))
    }

    /// Where `name` can come from, in order.
    pub(super) fn candidates(&self, name: &str) -> Vec<Candidate> {
        sources::candidates(
            name,
            &self.dir,
            self.opts.from.as_ref(),
            &self.opts.mirrors,
            self.opts.default_sources.then_some(&self.dataset.defaults),
            self.dataset.archive.as_deref(),
        )
    }

    /// Gets one file into `<dir>/<name>`, verified, from the first source that has a good copy.
    pub(super) fn get(&self, file: &KnownFile) -> Result<FileRecord, DownloadError> {
        let cands = self.candidates(&file.name);
        self.first_success(&file.name, &cands, |cand| self.obtain(file, cand))
    }

    /// Tries `f` on each candidate; the first success wins. Running out of space stops at once.
    pub(super) fn first_success<T>(
        &self,
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
                Err(e) if e.is_out_of_space() => return Err(e),
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

    /// Gets `file` from `cand` into place through `<name>.part`, verified first.
    fn obtain(&self, file: &KnownFile, cand: &Candidate) -> Result<FileRecord, DownloadError> {
        let name = &file.name;
        let dest = self.dir.join(name);
        let part = part_path(&dest);
        let origin = cand.to_string();
        let checked = match cand {
            Candidate::Local(src) if *src == dest => dest.clone(),
            Candidate::Local(src) => {
                // A local copy is never resumed: a half-written one is worth nothing.
                copy_file(src, &part).inspect_err(|_| {
                    let _ = std::fs::remove_file(&part);
                })?;
                part.clone()
            }
            Candidate::Remote(url) => {
                let n = self.fetcher.fetch(url, &part, name)?;
                self.downloaded.set(self.downloaded.get() + n);
                part.clone()
            }
        };
        let digests = checksum::digest_file(&checked)?;
        if let Err(e) = digests.verify(&file.accepted, &format!("{name} from {origin}")) {
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
}

/// `<dest>.part`, where a file is written before it is verified and renamed into place.
pub(super) fn part_path(dest: &Path) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// Renames, naming the destination on failure.
pub(super) fn rename(from: &Path, to: &Path) -> Result<(), DownloadError> {
    std::fs::rename(from, to).map_err(|e| DownloadError::io("renaming to", to, e))
}

/// Copies `src` to a fresh `dest` (not its permissions: a read-only source gives a normal
/// file); a failure names the side that failed.
pub(super) fn copy_file(src: &Path, dest: &Path) -> Result<u64, DownloadError> {
    let mut from = File::open(src).map_err(|e| DownloadError::io("opening", src, e))?;
    let mut to = File::create(dest).map_err(|e| DownloadError::io("creating", dest, e))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(DownloadError::io("reading", src, e)),
        };
        to.write_all(&buf[..n])
            .map_err(|e| DownloadError::io("writing", dest, e))?;
        total += n as u64;
    }
    to.sync_all()
        .map_err(|e| DownloadError::io("writing", dest, e))?;
    Ok(total)
}
