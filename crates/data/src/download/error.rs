//! The downloader's error type: every variant names the URL, file or archive it is about, so a
//! failed `cargo xtask download` says what to fix without a backtrace. Paths and foreign text
//! are shown escaped ([`super::text`]): a message never carries raw bytes to the terminal.

use std::fmt;
use std::path::{Path, PathBuf};

use super::text;

/// Everything that can go wrong while fetching, verifying or extracting a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The server could not be reached (refused, DNS, timeout, TLS, connection reset).
    #[error("cannot reach {url}: {reason}")]
    Network {
        /// The URL that was requested.
        url: String,
        /// What the transport said.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("{url} answered HTTP {status} {text}")]
    HttpStatus {
        /// The URL that was requested.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The status text.
        text: String,
    },
    /// The transfer stopped early; the partial file is kept so that the next run resumes.
    #[error("download of {url} stopped after {received} of {expected} bytes ({reason}); partial data kept in {} and resumed by the next run", shown(part))]
    Interrupted {
        /// The URL that was requested.
        url: String,
        /// The `.part` file holding what arrived.
        part: PathBuf,
        /// Bytes present in the `.part` file.
        received: u64,
        /// Bytes expected in total, as far as the server said (`?` when unknown).
        expected: ExpectedLen,
        /// What the transport said.
        reason: String,
    },
    /// A file's checksum matches none of the accepted values.
    #[error("checksum mismatch for {what}: expected {expected}, got {got}")]
    ChecksumMismatch {
        /// The file (and where it came from).
        what: String,
        /// The accepted values.
        expected: String,
        /// The computed value(s).
        got: String,
    },
    /// The archive is truncated or not a valid gzip/tar stream.
    #[error("archive {} is truncated or corrupt: {reason}", shown(archive))]
    CorruptArchive {
        /// The archive.
        archive: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// The archive holds an entry that could write outside the target folder, or a special file.
    #[error(
        "archive {} holds an unsafe entry \"{}\": {reason}; nothing was extracted",
        shown(archive),
        text::escape(entry, 200)
    )]
    UnsafeEntry {
        /// The archive.
        archive: PathBuf,
        /// The entry's path as stored.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// The extracted images do not match `lfw-names.txt`.
    #[error(
        "the images of {} do not match {}: {reason}",
        shown(origin),
        shown(names)
    )]
    ContentMismatch {
        /// The archive or folder the images came from.
        origin: PathBuf,
        /// The names file they were checked against.
        names: PathBuf,
        /// The first differences.
        reason: String,
    },
    /// A protocol file could not be parsed.
    #[error("{}:{line}: {reason}", shown(path))]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The disk is full.
    #[error("disk full while writing {}", shown(path))]
    DiskFull {
        /// The file being written.
        path: PathBuf,
    },
    /// A write went past the process's file-size limit (`ulimit -f`).
    #[error("file size limit (ulimit -f) reached while writing {}", shown(path))]
    FileTooLarge {
        /// The file being written.
        path: PathBuf,
    },
    /// Writing the extracted files failed (disk full, size limit, permissions, ...).
    #[error("extracting {} into {} failed, the partial extraction was removed{}: {error}", shown(archive), shown(into), needed_note(*needed))]
    Extracting {
        /// The archive.
        archive: PathBuf,
        /// The folder the images were to go to.
        into: PathBuf,
        /// The uncompressed size of the archive, when known (about the space the images need).
        needed: Option<u64>,
        /// The write that failed, naming its file.
        error: Box<DownloadError>,
    },
    /// Extracted files changed since they were verified, and re-extracting them failed.
    #[error("{changed}; the repair failed: {error}")]
    Repair {
        /// Which files differ and how.
        changed: String,
        /// Why the repair failed.
        error: Box<DownloadError>,
    },
    /// `--from` (with no other source allowed) lacks files the dataset needs.
    #[error("--from {} lacks {}: {found}; expected {expected}; pass a folder or base URL that has them, add --mirror, or allow the default sources", shown(from), missing.join(", "))]
    FromLacks {
        /// The folder looked in.
        from: PathBuf,
        /// The files not found there.
        missing: Vec<String>,
        /// What the folder holds.
        found: String,
        /// What a usable `--from` holds.
        expected: String,
    },
    /// `--from` names something that cannot be the dataset.
    #[error("--from {}: {found}; expected {expected}", shown(from))]
    FromUnusable {
        /// The path given.
        from: PathBuf,
        /// What it is.
        found: String,
        /// What a usable `--from` is.
        expected: String,
    },
    /// Any other I/O error, with the path it concerns.
    #[error("{action} {}: {source}", shown(path))]
    Io {
        /// What was being done ("reading", "writing", "renaming to", ...).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file was wanted but no source is configured for it.
    #[error("no source for {file}: pass --from or a mirror, or allow the default sources")]
    NoSource {
        /// The file.
        file: String,
    },
    /// Every source of a file failed; each attempt's error is listed.
    #[error("could not obtain {file} from any source:{}", list_attempts(attempts))]
    AllSourcesFailed {
        /// The file.
        file: String,
        /// (source, error) for each attempt, in order.
        attempts: Vec<(String, DownloadError)>,
    },
    /// The options are inconsistent (e.g. a `--from` path that does not exist).
    #[error("invalid download options: {0}")]
    Options(String),
}

/// A byte count that may be unknown (no `Content-Length`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedLen(pub Option<u64>);

impl fmt::Display for ExpectedLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "?"),
        }
    }
}

fn shown(p: &Path) -> String {
    text::path(p)
}

fn needed_note(needed: Option<u64>) -> String {
    match needed {
        Some(n) => format!(
            " (the archive unpacks to about {} MB)",
            n.div_ceil(1_000_000)
        ),
        None => String::new(),
    }
}

fn list_attempts(attempts: &[(String, DownloadError)]) -> String {
    attempts
        .iter()
        .map(|(src, e)| format!("\n  - {src}: {e}"))
        .collect()
}

impl DownloadError {
    /// Wraps an I/O error with the path and action, mapping "no space left" and "quota
    /// exceeded" to [`DownloadError::DiskFull`] and "file too large" to
    /// [`DownloadError::FileTooLarge`].
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        use std::io::ErrorKind;
        let path = path.into();
        match source.kind() {
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded => {
                return DownloadError::DiskFull { path }
            }
            ErrorKind::FileTooLarge => return DownloadError::FileTooLarge { path },
            _ => {}
        }
        DownloadError::Io {
            action,
            path,
            source,
        }
    }

    /// Whether the disk (or the file-size limit) is exhausted: no other source can help.
    pub fn is_out_of_space(&self) -> bool {
        match self {
            DownloadError::DiskFull { .. } | DownloadError::FileTooLarge { .. } => true,
            DownloadError::Extracting { error, .. } | DownloadError::Repair { error, .. } => {
                error.is_out_of_space()
            }
            _ => false,
        }
    }

    /// Whether every attempt failed only because a network source was unreachable.
    pub fn is_network(&self) -> bool {
        match self {
            DownloadError::Network { .. } => true,
            DownloadError::AllSourcesFailed { attempts, .. } => {
                attempts.iter().all(|(_, e)| e.is_network())
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_maps_to_disk_full() {
        let e = DownloadError::io("writing", "/x/y", std::io::Error::from_raw_os_error(28));
        assert!(matches!(e, DownloadError::DiskFull { .. }), "{e:?}");
        assert_eq!(e.to_string(), "disk full while writing /x/y");
        let e = DownloadError::io("writing", "/x/z", std::io::Error::from_raw_os_error(27));
        assert!(e.is_out_of_space(), "{e:?}");
        assert!(e.to_string().contains("ulimit -f") && e.to_string().contains("/x/z"));
    }

    #[test]
    fn paths_and_entries_from_an_archive_are_shown_escaped() {
        let e = DownloadError::UnsafeEntry {
            archive: "/a\u{1b}]0;x\u{7}.tgz".into(),
            entry: "\u{1b}[31m../x".into(),
            reason: "r".into(),
        };
        let s = e.to_string();
        assert!(!s.chars().any(|c| c.is_control()), "{s:?}");
        assert!(s.contains("\\x1b[31m../x"), "{s}");
    }

    #[test]
    fn all_sources_failed_lists_each_attempt() {
        let e = DownloadError::AllSourcesFailed {
            file: "pairs.txt".into(),
            attempts: vec![
                (
                    "http://a/pairs.txt".into(),
                    DownloadError::Options("one".into()),
                ),
                (
                    "http://b/pairs.txt".into(),
                    DownloadError::Options("two".into()),
                ),
            ],
        };
        let s = e.to_string();
        assert!(
            s.contains("http://a/pairs.txt: invalid download options: one"),
            "{s}"
        );
        assert!(
            s.contains("http://b/pairs.txt: invalid download options: two"),
            "{s}"
        );
    }
}
