//! Safe extraction of a `.tgz` into a fresh folder.
//!
//! Only regular files and directories with plain relative paths are written; an absolute path,
//! a `..` component, any symbolic or hard link (LFW has none, and an inner link is the first
//! half of the classic two-entry escape), a device, FIFO or other special entry makes the whole
//! archive refused before anything is kept. Files are written by us, not by `tar`'s `unpack`,
//! so no mode, owner or link metadata from the archive is applied. The gzip stream is read to
//! its end so that its CRC and length trailer are checked (tar stops at its end-of-archive
//! blocks otherwise). The caller extracts into a temporary folder and deletes it on error.
//! Each written file's size and SHA-256 are recorded as it is written, so that later runs can
//! tell whether an extracted file was changed. A file that is not gzip data is refused before
//! decoding, naming its first bytes; a decoder's complaint is shown escaped and clipped (a
//! corrupt header's bytes are no text to print), with how far extraction had come.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use super::error::DownloadError;
use super::layout::ImageRecord;
use super::text;
use crate::progress::{Progress, Reporter, Task};

/// What an extraction wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExtractSummary {
    /// Regular files written.
    pub files: usize,
    /// Uncompressed bytes written.
    pub bytes: u64,
    /// `.jpg` entries whose data does not start with the JPEG SOI marker (relative paths,
    /// escaped for printing).
    pub bad_jpegs: Vec<String>,
    /// Size and SHA-256 of each written file, by its path relative to the target folder
    /// (`/`-separated).
    pub written: BTreeMap<String, ImageRecord>,
}

/// The uncompressed size a gzip file announces in its trailer (ISIZE, modulo 2^32: exact for
/// archives under 4 GiB, such as LFW's), or `None` when it cannot be read.
pub fn gzip_uncompressed_size(archive: &Path) -> Option<u64> {
    use std::io::{Seek, SeekFrom};
    let mut f = File::open(archive).ok()?;
    if f.metadata().ok()?.len() < 18 {
        return None;
    }
    f.seek(SeekFrom::End(-4)).ok()?;
    let mut b = [0u8; 4];
    f.read_exact(&mut b).ok()?;
    Some(u32::from_le_bytes(b) as u64)
}

/// A decoder error as a corrupt-archive error: its message without the binary data it may
/// quote, with where it happened (`at`) and how far extraction had come.
fn corrupt(archive: &Path, e: std::io::Error, at: &str, files: usize) -> DownloadError {
    DownloadError::CorruptArchive {
        archive: archive.to_path_buf(),
        reason: format!(
            "{} ({at}, after {files} file(s) were extracted)",
            text::decoder_message(&e.to_string(), 160)
        ),
    }
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
    let head = text::head_of(archive, 64);
    if !head.starts_with(&[0x1f, 0x8b]) {
        return Err(DownloadError::CorruptArchive {
            archive: archive.to_path_buf(),
            reason: format!(
                "not gzip data: it starts with {}, a .tgz starts with bytes 1f 8b",
                text::excerpt(&head)
            ),
        });
    }
    let file = File::open(archive).map_err(|e| DownloadError::io("opening", archive, e))?;
    let size = file.metadata().map(|m| m.len()).ok();
    let reporter = progress.start(Task::bytes(
        format!("extracting {}", archive.display()),
        size,
    ));
    let counting = Counting {
        inner: BufReader::with_capacity(1 << 20, file),
        reporter,
    };
    let mut tar = tar::Archive::new(GzDecoder::new(counting));
    let mut summary = ExtractSummary::default();
    let mut buf = vec![0u8; 256 * 1024];
    for entry in tar
        .entries()
        .map_err(|e| corrupt(archive, e, "reading the first tar header", 0))?
    {
        let mut entry =
            entry.map_err(|e| corrupt(archive, e, "reading a tar header", summary.files))?;
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
                "{} to \"{}\": links are not allowed",
                if kind.is_symlink() {
                    "symbolic link"
                } else {
                    "hard link"
                },
                text::escape(&target.unwrap_or_default(), 200)
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
        let mut hash = Sha256::new();
        let mut size = 0u64;
        loop {
            let n = entry.read(&mut buf).map_err(|e| {
                let at = format!("reading the data of {}", text::escape(&raw, 200));
                corrupt(archive, e, &at, summary.files)
            })?;
            if n == 0 {
                break;
            }
            if first && is_jpg(&rel) && !buf[..n].starts_with(&[0xFF, 0xD8]) {
                summary.bad_jpegs.push(text::escape(&raw, 200));
            }
            first = false;
            out.write_all(&buf[..n])
                .map_err(|e| DownloadError::io("writing", &dest, e))?;
            hash.update(&buf[..n]);
            size += n as u64;
        }
        if first && is_jpg(&rel) {
            summary.bad_jpegs.push(text::escape(&raw, 200));
        }
        summary.bytes += size;
        summary.files += 1;
        let key: Vec<String> = rel
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        summary.written.insert(
            key.join("/"),
            ImageRecord {
                size,
                sha256: hex::encode(hash.finalize()),
            },
        );
    }
    // tar stops at its end-of-archive blocks; reading the rest checks gzip's CRC and length.
    let mut rest = tar.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink())
        .map_err(|e| corrupt(archive, e, "checking the gzip trailer", summary.files))?;
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
    if raw.chars().any(|c| c.is_control() || c == '\u{fffd}') {
        return Err("the path contains control characters or bytes that are not UTF-8");
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
        assert!(safe_relative("a/\u{1b}[2Jb.jpg").is_err());
    }
}
