//! Streams one epoch of an LFW training split through the cache and the loader and prints
//! images/s, the way training consumes it (no model). Usage:
//!     cargo run --release -p arcface-data --example stream -- [data/lfw] [dev|view2:K] [size]

use std::sync::Arc;
use std::time::Instant;

use arcface_data::{CropBox, ImageCache, Lfw, Loader, LoaderConfig, Preprocess, Progress, ProgressSink, Protocol, Task, TaskProgress};

/// The cache build's progress as one rewritten stderr line (the library itself never draws).
struct Stderr;

struct StderrTask(String, u64);

impl ProgressSink for Stderr {
    fn start(&self, task: &Task) -> Box<dyn TaskProgress> {
        Box::new(StderrTask(task.label.clone(), task.total.unwrap_or(0)))
    }
}

impl TaskProgress for StderrTask {
    fn set(&self, done: u64) {
        eprint!("\r{}: {done}/{}", self.0, self.1);
    }
    fn finish(&self) {
        eprintln!();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = args.first().map(String::as_str).unwrap_or("data/lfw");
    let protocol: Protocol = args.get(1).map(String::as_str).unwrap_or("dev").parse()?;
    let size: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(112);
    let split = Lfw::open(root)?.split(&protocol)?;
    let train = split.train;
    println!("{protocol}: {} images of {} identities", train.len(), train.num_classes());
    let pre = Preprocess { crop: CropBox::LFW, size, ..Preprocess::default() };
    let t = Instant::now();
    let cache = ImageCache::build_or_open(&train.paths, &pre, "data/cache", Progress::sink(Stderr))?;
    println!("cache ready in {:.1} s ({} images, {size} px)", t.elapsed().as_secs_f64(), cache.len());
    let config = LoaderConfig { batch_size: 128, seed: 1, flip: true, drop_last: false, prefetch: 4, shuffle: true, threads: 0, ..LoaderConfig::default() };
    let loader = Loader::new(Arc::new(cache), train.labels.clone(), config)?;
    let t = Instant::now();
    let mut n = 0;
    for batch in loader.epoch(0, 0) {
        n += batch?.indices.len();
    }
    let secs = t.elapsed().as_secs_f64();
    println!("streamed {n} images in {secs:.2} s: {:.0} images/s (shuffle, flip, f32 tensors)", n as f64 / secs);
    Ok(())
}
