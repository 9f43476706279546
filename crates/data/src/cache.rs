//! A preprocessed-image cache: every image is decoded, cropped and resized once (in parallel
//! with rayon) into one flat file of `N * size * size * 3` bytes that is then memory-mapped,
//! so epochs cost a memcpy per image instead of a JPEG decode.
//!
//! The file name is a key hashing the image paths, their sizes and mtimes, the crop and the
//! output size, so changing any of them builds a new cache instead of reading stale pixels.
//! A JSON sidecar records what the file holds; both are written to temporary names and
//! renamed, so an interrupted build never leaves a cache that looks valid.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, MmapMut};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};
use crate::preprocess::Preprocess;
use crate::progress::{Progress, Task};

/// Bump when the file layout or the preprocessing code changes meaning (2: JPEGs decoded by
/// libjpeg-turbo).
const FORMAT_VERSION: u32 = 2;

/// What the JSON sidecar next to a cache file records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Sidecar {
    version: u32,
    key: String,
    count: usize,
    preprocess: Preprocess,
}

enum Storage {
    Mapped(Mmap),
    Memory(Vec<u8>),
}

/// Preprocessed `size x size` RGB images (HWC u8), indexed like the paths they came from.
pub struct ImageCache {
    storage: Storage,
    len: usize,
    size: usize,
    key: String,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for ImageCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageCache").field("len", &self.len).field("size", &self.size).field("path", &self.path).finish()
    }
}

/// The cache key: a hash of the paths with their sizes and mtimes, and the preprocessing.
pub fn cache_key(paths: &[PathBuf], preprocess: &Preprocess) -> Result<String> {
    let mut h = Sha256::new();
    h.update(format!("arcface-data cache v{FORMAT_VERSION} {preprocess:?} n={}\n", paths.len()));
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| DataError::io(p, e))?;
        let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).unwrap_or_default();
        h.update(p.to_string_lossy().as_bytes());
        h.update(format!("\0{}\0{}\n", meta.len(), mtime.as_nanos()));
    }
    Ok(hex::encode(&h.finalize()[..16]))
}

/// Preprocesses `paths[i]` into `out`'s i-th slot, in parallel.
fn fill(paths: &[PathBuf], preprocess: &Preprocess, out: &mut [u8], progress: &Progress) -> Result<()> {
    let report = progress.start(Task::items("preprocessing images", paths.len() as u64));
    out.par_chunks_mut(preprocess.image_bytes()).zip(paths.par_iter()).try_for_each(|(slot, path)| {
        slot.copy_from_slice(&preprocess.load(path)?);
        report.inc(1);
        Ok::<_, DataError>(())
    })?;
    report.finish();
    Ok(())
}

impl ImageCache {
    /// Opens the cache for (`paths`, `preprocess`) in `cache_dir`, building it first if it is
    /// missing or stale. Fails, naming the image, if any image cannot be read or decoded.
    pub fn build_or_open(paths: &[PathBuf], preprocess: &Preprocess, cache_dir: impl AsRef<Path>, progress: Progress) -> Result<ImageCache> {
        preprocess.validate()?;
        if paths.is_empty() {
            return Err(DataError::Config("cannot cache an empty image list".into()));
        }
        let dir = cache_dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
        let key = cache_key(paths, preprocess)?;
        let data_path = dir.join(format!("{key}.rgb"));
        let meta_path = dir.join(format!("{key}.json"));
        let want = Sidecar { version: FORMAT_VERSION, key: key.clone(), count: paths.len(), preprocess: *preprocess };
        let total = paths.len() * preprocess.image_bytes();

        let valid = std::fs::read(&meta_path).ok().and_then(|b| serde_json::from_slice::<Sidecar>(&b).ok()) == Some(want.clone())
            && std::fs::metadata(&data_path).is_ok_and(|m| m.len() == total as u64);
        if !valid {
            let tmp = dir.join(format!("{key}.rgb.tmp{}", std::process::id()));
            let built = Self::build_file(paths, preprocess, &tmp, total, &progress);
            if let Err(e) = built {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            std::fs::rename(&tmp, &data_path).map_err(|e| DataError::io(&data_path, e))?;
            let tmp_meta = dir.join(format!("{key}.json.tmp{}", std::process::id()));
            let json = serde_json::to_vec_pretty(&want).map_err(|e| DataError::io(&meta_path, e.into()))?;
            std::fs::write(&tmp_meta, json).map_err(|e| DataError::io(&tmp_meta, e))?;
            std::fs::rename(&tmp_meta, &meta_path).map_err(|e| DataError::io(&meta_path, e))?;
        }
        let file = File::open(&data_path).map_err(|e| DataError::io(&data_path, e))?;
        // SAFETY: the file is ours, complete (renamed into place after the build) and only read.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| DataError::io(&data_path, e))?;
        if mmap.len() != total {
            return Err(DataError::Cache { path: data_path, message: format!("{} bytes, expected {total}", mmap.len()) });
        }
        Ok(ImageCache { storage: Storage::Mapped(mmap), len: paths.len(), size: preprocess.size, key, path: Some(data_path) })
    }

    fn build_file(paths: &[PathBuf], preprocess: &Preprocess, tmp: &Path, total: usize, progress: &Progress) -> Result<()> {
        let file = File::options().read(true).write(true).create(true).truncate(true).open(tmp).map_err(|e| DataError::io(tmp, e))?;
        file.set_len(total as u64).map_err(|e| DataError::io(tmp, e))?;
        // SAFETY: the temporary file is private to this process until it is renamed.
        let mut map = unsafe { MmapMut::map_mut(&file) }.map_err(|e| DataError::io(tmp, e))?;
        fill(paths, preprocess, &mut map, progress)?;
        map.flush().map_err(|e| DataError::io(tmp, e))?;
        Ok(())
    }

    /// Preprocesses `paths` into memory without touching the disk (small sets, tests).
    pub fn in_memory(paths: &[PathBuf], preprocess: &Preprocess, progress: Progress) -> Result<ImageCache> {
        preprocess.validate()?;
        let mut data = vec![0u8; paths.len() * preprocess.image_bytes()];
        fill(paths, preprocess, &mut data, &progress)?;
        Self::from_pixels(data, preprocess.size)
    }

    /// Wraps already preprocessed HWC pixels (`n * size * size * 3` bytes).
    pub fn from_pixels(pixels: Vec<u8>, size: usize) -> Result<ImageCache> {
        let per = size * size * 3;
        // `usize::is_multiple_of` needs Rust 1.87; the workspace's rust-version is 1.85.
        #[allow(clippy::manual_is_multiple_of)]
        if per == 0 || pixels.len() % per != 0 {
            return Err(DataError::Config(format!("{} bytes is not a whole number of {size}x{size}x3 images", pixels.len())));
        }
        let len = pixels.len() / per;
        Ok(ImageCache { storage: Storage::Memory(pixels), len, size, key: String::new(), path: None })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the cache holds no images.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Side length of each image.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The cache key (empty for in-memory caches).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The backing file, if memory-mapped.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn bytes(&self) -> &[u8] {
        match &self.storage {
            Storage::Mapped(m) => m,
            Storage::Memory(v) => v,
        }
    }

    /// Image `i` as `size*size*3` HWC RGB bytes. Panics if `i >= len()`, like slice indexing.
    pub fn get(&self, i: usize) -> &[u8] {
        let per = self.size * self.size * 3;
        &self.bytes()[i * per..(i + 1) * per]
    }

    /// Image `i`, or `None` when out of range.
    pub fn try_get(&self, i: usize) -> Option<&[u8]> {
        (i < self.len).then(|| self.get(i))
    }
}
