//! Data pipeline throughput on this machine's CPU, with 1 and 2 rayon threads (local pools):
//! JPEG decode + crop + resize (the cache build / eval path), cached load + flip +
//! normalized tensor (the training loader's per-batch work), and the same with every
//! augmentation step on every image at 48 and 112 px (the loader's worst case). Images: the
//! lfw-mini fixture.
//! Run: `cargo bench -p arcface-benches --bench data_pipeline`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arcface_data::{scan_folder, Augment, ImageCache, Loader, LoaderConfig, Preprocess, Progress};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rayon::prelude::*;

fn fixture_paths() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/data/tests/fixtures/lfw-mini/lfw-deepfunneled");
    scan_folder(root).expect("lfw-mini fixture").paths
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool")
}

fn jpeg(c: &mut Criterion) {
    // 4 x 14 images so two threads get balanced work.
    let base = fixture_paths();
    let paths: Vec<PathBuf> = base.iter().cycle().take(4 * base.len()).cloned().collect();
    let pre = Preprocess::default();
    let mut g = c.benchmark_group("cpu/jpeg_decode_crop_resize");
    g.throughput(Throughput::Elements(paths.len() as u64));
    for threads in [1, 2] {
        let pool = pool(threads);
        g.bench_function(format!("threads{threads}"), |b| {
            b.iter(|| pool.install(|| paths.par_iter().map(|p| pre.load(p).expect("decode")).collect::<Vec<_>>()))
        });
    }
    g.finish();
}

fn cached(c: &mut Criterion) {
    let batch = 128;
    let paths: Vec<PathBuf> = fixture_paths().into_iter().cycle().take(batch).collect();
    let pre = Preprocess::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Arc::new(ImageCache::build_or_open(&paths, &pre, dir.path(), Progress::Silent).expect("cache"));
    let config = LoaderConfig { batch_size: batch, flip: true, ..LoaderConfig::default() };
    let loader = Loader::new(cache, vec![0; batch], config).expect("loader");
    let mut g = c.benchmark_group("cpu/cached_flip_tensor");
    g.throughput(Throughput::Elements(batch as u64));
    for threads in [1, 2] {
        let pool = pool(threads);
        g.bench_function(format!("threads{threads}"), |b| {
            b.iter(|| pool.install(|| loader.assemble(0, (0..batch).collect()).expect("batch")))
        });
    }
    g.finish();
}

/// Every step on every image: the warp (zoom, aspect, shift, rotation, flip), the three
/// colour jitters, grayscale and a blur of sigma up to 2 (13 taps), so an upper bound.
fn full_augment() -> Augment {
    Augment {
        scale: [0.7, 1.0],
        aspect: [0.8, 1.25],
        translate: 0.1,
        rotate: 15.0,
        brightness: 0.3,
        contrast: 0.3,
        saturation: 0.3,
        grayscale: 1.0,
        blur: 1.0,
        blur_sigma: [0.5, 2.0],
        ..Augment::default()
    }
}

fn augmented(c: &mut Criterion) {
    let batch = 128;
    let paths: Vec<PathBuf> = fixture_paths().into_iter().cycle().take(batch).collect();
    let mut g = c.benchmark_group("cpu/cached_augment_tensor");
    g.throughput(Throughput::Elements(batch as u64));
    for size in [48, 112] {
        let pre = Preprocess { size, ..Preprocess::default() };
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Arc::new(ImageCache::build_or_open(&paths, &pre, dir.path(), Progress::Silent).expect("cache"));
        let config = LoaderConfig { batch_size: batch, flip: true, augment: full_augment(), ..LoaderConfig::default() };
        let loader = Loader::new(cache, vec![0; batch], config).expect("loader");
        for threads in [1, 2] {
            let pool = pool(threads);
            g.bench_function(format!("{size}px/threads{threads}"), |b| {
                b.iter(|| pool.install(|| loader.assemble(0, (0..batch).collect()).expect("batch")))
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = arcface_benches::criterion();
    targets = jpeg, cached, augmented
}
criterion_main!(benches);
