//! Any `<root>/<identity>/<image>` dataset (CASIA-WebFace-style folders, an extracted LFW
//! `lfw-deepfunneled/`, ...) as a [`TrainSet`]: identities sorted by name get dense class ids,
//! images are sorted within each identity, so the result is the same on every machine.

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::sets::TrainSet;

/// Image extensions picked up by [`scan_folder`] (case-insensitive).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        out.push(entry.map_err(|e| DataError::io(dir, e))?.path());
    }
    out.sort();
    Ok(out)
}

/// Scans `root/<identity>/<image>`; identity folders without images are skipped (they would
/// be classes nobody can learn). Fails when `root` has no sub-folders or no images at all.
pub fn scan_folder(root: impl AsRef<Path>) -> Result<TrainSet> {
    let root = root.as_ref();
    let dirs: Vec<PathBuf> = sorted_entries(root)?.into_iter().filter(|p| p.is_dir()).collect();
    if dirs.is_empty() {
        return Err(DataError::Layout {
            path: root.to_path_buf(),
            message: "no identity folders (expected <root>/<identity>/<image>)".into(),
        });
    }
    let mut set = TrainSet::default();
    for dir in dirs {
        let images: Vec<PathBuf> = sorted_entries(&dir)?.into_iter().filter(|p| p.is_file() && is_image(p)).collect();
        if images.is_empty() {
            continue;
        }
        let label = set.classes.len() as u32;
        set.classes.push(dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        set.labels.extend(std::iter::repeat_n(label, images.len()));
        set.paths.extend(images);
    }
    if set.is_empty() {
        return Err(DataError::Layout {
            path: root.to_path_buf(),
            message: format!("no images ({}) in any identity folder", IMAGE_EXTENSIONS.join(", ")),
        });
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_sorted_and_skips_empty_identities() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (id, files) in [("bob", vec!["2.png", "1.JPG", "notes.txt"]), ("amy", vec!["x.jpeg"]), ("empty", vec![])] {
            std::fs::create_dir(root.join(id)).unwrap();
            for f in files {
                std::fs::write(root.join(id).join(f), b"").unwrap();
            }
        }
        std::fs::write(root.join("README"), b"").unwrap();
        let set = scan_folder(root).unwrap();
        assert_eq!(set.classes, vec!["amy".to_string(), "bob".to_string()]);
        assert_eq!(set.labels, vec![0, 1, 1]);
        let names: Vec<_> = set.paths.iter().map(|p| p.file_name().unwrap().to_str().unwrap()).collect();
        assert_eq!(names, vec!["x.jpeg", "1.JPG", "2.png"]);
    }

    #[test]
    fn empty_folder_and_no_images_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = scan_folder(dir.path()).unwrap_err().to_string();
        assert!(e.contains("no identity folders"), "{e}");
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a").join("x.txt"), b"").unwrap();
        let e = scan_folder(dir.path()).unwrap_err().to_string();
        assert!(e.contains("no images"), "{e}");
        assert!(matches!(scan_folder(dir.path().join("missing")), Err(DataError::Io { .. })));
    }
}
