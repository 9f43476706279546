//! Safe extraction of a `.tgz` into a fresh folder.
//!
//! Only regular files and directories with plain relative paths are written; an absolute path,
//! a `..` component, any symbolic or hard link (LFW has none, and an inner link is the first
//! half of the classic two-entry escape), a device, FIFO or other special entry makes the whole
//! archive refused before anything is kept. Files are written by us, not by `tar`'s `unpack`,
//! so no mode, owner or link metadata from the archive is applied. The gzip stream is read to
//! its end so that its CRC and length trailer are checked (tar stops at its end-of-archive
//! blocks otherwise). The caller extracts into a temporary folder and deletes it on error.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;

use super::error::DownloadError;
use crate::progress::{Progress, Reporter, Task};

/// What an extraction wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExtractSummary {
    /// Regular files written.
    pub files: usize,
    /// Uncompressed bytes written.
    pub bytes: u64,
    /// `.jpg` entries whose data does not start with the JPEG SOI marker (relative paths).
    pub bad_jpegs: Vec<String>,
}

/// Counts the compressed bytes read, for progress.
struct Counting<R> {
    inner: R,
    reporter: Reporter,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.reporter.inc(n as u64);
        Ok(n)
    }
}

/// Extracts `archive` (gzip-compressed tar) into the existing, empty folder `into`.
pub fn unpack_tgz(
    archive: &Path,
    into: &Path,
    progress: &Progress,
) -> Result<ExtractSummary, DownloadError> {
    let file = File::open(archive).map_err(|e| DownloadError::io("opening", archive, e))?;
    let size = file.metadata().map(|m| m.len()).ok();
    let reporter = progress.start(Task::bytes(format!("extracting {}", archive.display()), size));
    let counting = Counting {
        inner: BufReader::with_capacity(1 << 20, file),
        reporter,
    };
    let mut tar = tar::Archive::new(GzDecoder::new(counting));
    let corrupt = |e: std::io::Error| DownloadError::CorruptArchive {
        archive: archive.to_path_buf(),
        reason: e.to_string(),
    };
    let mut summary = ExtractSummary::default();
    let mut buf = vec![0u8; 256 * 1024];
    for entry in tar.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            continue;
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let unsafe_entry = |reason: &str| DownloadError::UnsafeEntry {
            archive: archive.to_path_buf(),
            entry: raw.clone(),
            reason: reason.to_string(),
        };
        let rel = safe_relative(&raw).map_err(unsafe_entry)?;
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            return Err(unsafe_entry(&format!(
                "{} to {:?}: links are not allowed",
                if kind.is_symlink() {
                    "symbolic link"
                } else {
                    "hard link"
                },
                target.unwrap_or_default()
            )));
        }
        let dest = into.join(&rel);
        if kind.is_dir() {
            std::fs::create_dir_all(&dest).map_err(|e| DownloadError::io("creating", &dest, e))?;
            continue;
        }
        if !(kind.is_file() || kind.is_contiguous()) {
            return Err(unsafe_entry(&format!(
                "entry type {kind:?} is not a regular file or directory"
            )));
        }
        if rel.as_os_str().is_empty() {
            return Err(unsafe_entry("a file entry with an empty path"));
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| DownloadError::io("creating", parent, e))?;
        }
        let mut out = File::create(&dest).map_err(|e| DownloadError::io("creating", &dest, e))?;
        let mut first = true;
        loop {
            let n = entry.read(&mut buf).map_err(corrupt)?;
            if n == 0 {
                break;
            }
            if first && is_jpg(&rel) && !buf[..n].starts_with(&[0xFF, 0xD8]) {
                summary.bad_jpegs.push(raw.clone());
            }
            first = false;
            out.write_all(&buf[..n])
                .map_err(|e| DownloadError::io("writing", &dest, e))?;
            summary.bytes += n as u64;
        }
        if first && is_jpg(&rel) {
            summary.bad_jpegs.push(raw.clone());
        }
        summary.files += 1;
    }
    // tar stops at its end-of-archive blocks; reading the rest checks gzip's CRC and length.
    let mut rest = tar.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(corrupt)?;
    rest.into_inner().reporter.finish();
    Ok(summary)
}

fn is_jpg(rel: &Path) -> bool {
    rel.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("jpg"))
}

/// The entry's path as a plain relative path, or why it is refused.
fn safe_relative(raw: &str) -> Result<PathBuf, &'static str> {
    if raw.contains('\0') {
        return Err("the path contains a NUL byte");
    }
    if raw.starts_with('/') || raw.starts_with('\\') {
        return Err("absolute paths are not allowed");
    }
    let mut out = PathBuf::new();
    for c in Path::new(raw).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err("`..` components are not allowed"),
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute paths are not allowed")
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_normalized_and_escapes_refused() {
        assert_eq!(
            safe_relative("./a/b.jpg").unwrap(),
            PathBuf::from("a/b.jpg")
        );
        assert_eq!(safe_relative("a/./b/").unwrap(), PathBuf::from("a/b"));
        assert!(safe_relative("../evil").is_err());
        assert!(safe_relative("a/../../evil").is_err());
        assert!(safe_relative("a/..").is_err());
        assert!(safe_relative("/etc/passwd").is_err());
        assert!(safe_relative("\\evil").is_err());
    }
}
