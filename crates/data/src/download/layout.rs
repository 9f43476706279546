//! The expected image tree and the completion marker.
//!
//! The tree `lfw-deepfunneled/<Name>/<Name>_NNNN.jpg` must hold exactly the images that
//! `lfw-names.txt` (a checksum-verified file: `name<TAB>count` per line) announces: for every
//! name, images 1..=count and nothing else. For the real data that is 13233 images of 5749
//! people. The marker `.download-complete.json` records what was verified, so that a second
//! run can re-check cheaply (hash seven small files, list the tree) and do nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::checksum::{Checksum, Digests};
use super::error::DownloadError;
use crate::error::DataError;

/// The marker's file name inside `<dir>/lfw/`.
pub const MARKER: &str = ".download-complete.json";

/// `lfw-names.txt` as name -> image count (parsed by [`crate::protocol::read_names`]).
pub fn read_names(path: &Path) -> Result<BTreeMap<String, u32>, DownloadError> {
    let people = crate::protocol::read_names(path).map_err(|e| match e {
        DataError::Parse { path, line, message } => DownloadError::Parse { path, line, reason: message },
        DataError::Io { source, .. } => DownloadError::io("reading", path, source),
        other => DownloadError::Parse { path: path.to_path_buf(), line: 0, reason: other.to_string() },
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
                problems.push(format!("unexpected entry {person}"));
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
                    _ => problems.push(format!("unexpected entry {person}/{file}")),
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
    /// Marker format version.
    pub format: u32,
    /// People in the tree.
    pub identities: usize,
    /// Images in the tree.
    pub images: usize,
    /// The protocol files.
    pub files: Vec<FileRecord>,
    /// The archive the tree was extracted from.
    pub archive: ArchiveRecord,
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
        .filter(|m: &Marker| m.format == 1)
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
}
