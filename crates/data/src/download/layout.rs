//! The expected image tree and the completion marker.
//!
//! The tree `lfw-deepfunneled/<Name>/<Name>_NNNN.jpg` must hold exactly the images that
//! `lfw-names.txt` (a checksum-verified file: `name<TAB>count` per line) announces: for every
//! name, images 1..=count and nothing else. For the real data that is 13233 images of 5749
//! people. The marker `.download-complete.json` records what was verified, so that a second
//! run can re-check cheaply and do nothing: the seven small files are hashed again, the tree is
//! listed, and every image's size and SHA-256 (recorded as it was extracted, format 2) are
//! checked again in parallel, about half a second for LFW's 13233 images from a warm cache.
//! A format-1 marker (no image digests) is upgraded by hashing the images as they are.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::checksum::{Checksum, Digests};
use super::error::DownloadError;
use super::text;
use crate::error::DataError;

/// The marker's file name inside `<dir>/lfw/`.
pub const MARKER: &str = ".download-complete.json";
/// The marker format written now (2: with per-image digests).
pub const MARKER_FORMAT: u32 = 2;

/// One extracted file's size and SHA-256 (lower-case hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Size in bytes.
    pub size: u64,
    /// SHA-256.
    pub sha256: String,
}

/// Size and SHA-256 of a file.
pub fn record_file(path: &Path) -> Result<ImageRecord, DownloadError> {
    let mut file = std::fs::File::open(path).map_err(|e| DownloadError::io("opening", path, e))?;
    let mut hash = Sha256::new();
    let mut buf = [0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| DownloadError::io("reading", path, e))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        size += n as u64;
    }
    Ok(ImageRecord {
        size,
        sha256: hex::encode(hash.finalize()),
    })
}

/// Hashes every file of `records` (paths relative to `root`, `/`-separated) in parallel;
/// returns the ones that differ, as (relative path, how), in path order.
pub fn changed_files(
    root: &Path,
    records: &BTreeMap<String, ImageRecord>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = records
        .par_iter()
        .filter_map(|(rel, want)| {
            let how = match record_file(&root.join(rel)) {
                Err(e) => e.to_string(),
                Ok(got) if got.size != want.size => {
                    format!("{} bytes, extracted with {}", got.size, want.size)
                }
                Ok(got) if got.sha256 != want.sha256 => format!(
                    "same size, but sha256 {}, extracted with {}",
                    got.sha256, want.sha256
                ),
                Ok(_) => return None,
            };
            Some((rel.clone(), how))
        })
        .collect();
    out.sort();
    out
}

/// Digests of every file under `root` (relative `/`-separated paths), in parallel.
pub fn record_tree(root: &Path) -> Result<BTreeMap<String, ImageRecord>, DownloadError> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, PathBuf)>) -> Result<(), DownloadError> {
        for entry in std::fs::read_dir(dir).map_err(|e| DownloadError::io("listing", dir, e))? {
            let entry = entry.map_err(|e| DownloadError::io("listing", dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let path = entry.path();
            if path.is_dir() {
                walk(&path, &r, out)?;
            } else {
                out.push((r, path));
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(root, "", &mut files)?;
    files
        .into_par_iter()
        .map(|(rel, path)| Ok((rel, record_file(&path)?)))
        .collect()
}

/// `lfw-names.txt` as name -> image count (parsed by [`crate::protocol::read_names`]).
pub fn read_names(path: &Path) -> Result<BTreeMap<String, u32>, DownloadError> {
    let people = crate::protocol::read_names(path).map_err(|e| match e {
        DataError::Parse {
            path,
            line,
            message,
        } => DownloadError::Parse {
            path,
            line,
            reason: message,
        },
        DataError::Io { source, .. } => DownloadError::io("reading", path, source),
        other => DownloadError::Parse {
            path: path.to_path_buf(),
            line: 0,
            reason: other.to_string(),
        },
    })?;
    Ok(people.into_iter().map(|p| (p.name, p.count)).collect())
}

/// Checks that `images_dir` holds exactly the images `names` announces; returns (people, images).
pub fn verify_tree(
    images_dir: &Path,
    names: &BTreeMap<String, u32>,
    names_path: &Path,
    origin: &Path,
) -> Result<(usize, usize), DownloadError> {
    let mut problems: Vec<String> = Vec::new();
    let mut found = 0usize;
    let mut seen = 0usize;
    let list = |dir: &Path| -> Result<Vec<(String, bool)>, DownloadError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| DownloadError::io("listing", dir, e))? {
            let entry = entry.map_err(|e| DownloadError::io("listing", dir, e))?;
            let is_dir = entry
                .file_type()
                .map_err(|e| DownloadError::io("listing", entry.path(), e))?
                .is_dir();
            out.push((entry.file_name().to_string_lossy().into_owned(), is_dir));
        }
        Ok(out)
    };
    if !images_dir.is_dir() {
        problems.push(format!("{} is missing", images_dir.display()));
    } else {
        for (person, is_dir) in list(images_dir)? {
            let Some(&count) = names.get(&person).filter(|_| is_dir) else {
                problems.push(format!("unexpected entry {}", text::escape(&person, 100)));
                continue;
            };
            seen += 1;
            let mut have = vec![false; count as usize];
            for (file, is_dir) in list(&images_dir.join(&person))? {
                let index = file
                    .strip_prefix(person.as_str())
                    .and_then(|r| r.strip_prefix('_'))
                    .and_then(|r| r.strip_suffix(".jpg"))
                    .filter(|n| n.len() == 4 && !is_dir)
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|&n| (1..=count as usize).contains(&n));
                match index {
                    Some(n) if !have[n - 1] => {
                        have[n - 1] = true;
                        found += 1;
                    }
                    _ => problems.push(format!(
                        "unexpected entry {person}/{}",
                        text::escape(&file, 100)
                    )),
                }
            }
            if let Some(missing) = have.iter().position(|h| !h) {
                problems.push(format!(
                    "{person}/{person}_{:04}.jpg is missing",
                    missing + 1
                ));
            }
        }
        if seen < names.len() {
            let missing = names.keys().find(|n| !images_dir.join(n).is_dir());
            problems.push(format!(
                "{} of {} people are missing (e.g. {})",
                names.len() - seen,
                names.len(),
                missing.map_or("?", |s| s.as_str())
            ));
        }
    }
    if problems.is_empty() {
        return Ok((seen, found));
    }
    let expected: u32 = names.values().sum();
    let mut reason = format!(
        "{} problem(s), {found} of {expected} images in place: ",
        problems.len()
    );
    reason.push_str(
        &problems
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("; "),
    );
    Err(DownloadError::ContentMismatch {
        origin: origin.to_path_buf(),
        names: names_path.to_path_buf(),
        reason,
    })
}

/// How the archive was accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveVerification {
    /// Its digest matched this known-good value.
    Checksum(Checksum),
    /// Its digest matched no known value; its contents matched `lfw-names.txt` exactly.
    Contents,
}

/// One protocol file as obtained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// File name (`pairs.txt`, ...).
    pub name: String,
    /// Where it came from (URL or path).
    pub origin: String,
    /// Its digests.
    pub digests: Digests,
}

/// The archive as obtained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveRecord {
    /// Where it came from (URL or path).
    pub origin: String,
    /// Its digests.
    pub digests: Digests,
    /// How it was accepted.
    pub verified_by: ArchiveVerification,
}

/// What the marker file records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// Marker format version (1: no image digests; 2: [`Marker::image_digests`]).
    pub format: u32,
    /// People in the tree.
    pub identities: usize,
    /// Images in the tree.
    pub images: usize,
    /// The protocol files.
    pub files: Vec<FileRecord>,
    /// The archive the tree was extracted from.
    pub archive: ArchiveRecord,
    /// Each image's size and SHA-256 as extracted, by its path under `lfw-deepfunneled/`
    /// (empty in format 1).
    #[serde(default)]
    pub image_digests: BTreeMap<String, ImageRecord>,
}

/// Writes the marker atomically (temporary file + rename).
pub fn write_marker(lfw_dir: &Path, marker: &Marker) -> Result<PathBuf, DownloadError> {
    let path = lfw_dir.join(MARKER);
    let tmp = lfw_dir.join(format!("{MARKER}.tmp"));
    let json = serde_json::to_vec_pretty(marker)
        .map_err(|e| DownloadError::io("encoding", &path, e.into()))?;
    std::fs::write(&tmp, json).map_err(|e| DownloadError::io("writing", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| DownloadError::io("renaming to", &path, e))?;
    Ok(path)
}

/// Reads the marker; `None` when absent or unreadable (then everything is redone).
pub fn read_marker(lfw_dir: &Path) -> Option<Marker> {
    let bytes = std::fs::read(lfw_dir.join(MARKER)).ok()?;
    serde_json::from_slice(&bytes)
        .ok()
        .filter(|m: &Marker| (1..=MARKER_FORMAT).contains(&m.format))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_file_is_parsed_and_bad_lines_name_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lfw-names.txt");
        std::fs::write(&p, "A_B\t2\nC\t1\n").unwrap();
        let names = read_names(&p).unwrap();
        assert_eq!(names.get("A_B"), Some(&2));
        assert_eq!(names.len(), 2);
        std::fs::write(&p, "A_B\t2\n../x\t1\n").unwrap();
        let e = read_names(&p).unwrap_err().to_string();
        assert!(e.contains("lfw-names.txt:2:"), "{e}");
    }

    #[test]
    fn tree_must_match_names_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("lfw-deepfunneled");
        std::fs::create_dir_all(root.join("A_B")).unwrap();
        std::fs::create_dir_all(root.join("C")).unwrap();
        for f in ["A_B/A_B_0001.jpg", "A_B/A_B_0002.jpg", "C/C_0001.jpg"] {
            std::fs::write(root.join(f), b"x").unwrap();
        }
        let names: BTreeMap<String, u32> = [("A_B".to_string(), 2), ("C".to_string(), 1)].into();
        let p = Path::new("names");
        assert_eq!(verify_tree(&root, &names, p, p).unwrap(), (2, 3));
        std::fs::write(root.join("C/C_0002.jpg"), b"x").unwrap();
        let e = verify_tree(&root, &names, p, p).unwrap_err().to_string();
        assert!(e.contains("unexpected entry C/C_0002.jpg"), "{e}");
        std::fs::remove_file(root.join("C/C_0002.jpg")).unwrap();
        std::fs::remove_file(root.join("A_B/A_B_0002.jpg")).unwrap();
        let e = verify_tree(&root, &names, p, p).unwrap_err().to_string();
        assert!(e.contains("A_B/A_B_0002.jpg is missing"), "{e}");
    }

    #[test]
    fn a_changed_file_is_found_by_size_or_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("A")).unwrap();
        std::fs::write(dir.path().join("A/1.jpg"), b"abc").unwrap();
        std::fs::write(dir.path().join("A/2.jpg"), b"def").unwrap();
        let records = record_tree(dir.path()).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records["A/1.jpg"].size, 3);
        assert!(changed_files(dir.path(), &records).is_empty());
        std::fs::write(dir.path().join("A/1.jpg"), b"abcd").unwrap();
        std::fs::write(dir.path().join("A/2.jpg"), b"xyz").unwrap();
        let changed = changed_files(dir.path(), &records);
        assert_eq!(changed.len(), 2, "{changed:?}");
        assert!(changed[0].0 == "A/1.jpg" && changed[0].1.contains("4 bytes, extracted with 3"));
        assert!(changed[1].0 == "A/2.jpg" && changed[1].1.contains("same size, but sha256"));
        std::fs::remove_file(dir.path().join("A/2.jpg")).unwrap();
        assert!(changed_files(dir.path(), &records)[1].1.contains("opening"));
    }
}
