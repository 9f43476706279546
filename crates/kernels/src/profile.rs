//! Time per layer kind, for finding where a step goes: a [`Profiler`] in
//! [`crate::KernelOptions::profiler`] makes convolutions, BatchNorms, PReLUs, residual adds and
//! the FC layer synchronize the device around their forward, and the convolution, BatchNorm
//! and PReLU ops around their backward, and add the wall time to a per-kind total. Without
//! one, timing costs one `Option` check per layer. The synchronizations slow a GPU step down:
//! the totals are for comparing kinds, not for quoting as throughput.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use candle::{Device, Result};

/// Per-kind totals of wall time and calls; shared by the layers of a model (`Arc`).
#[derive(Debug, Default)]
pub struct Profiler {
    totals: Mutex<BTreeMap<&'static str, (Duration, usize)>>,
}

impl Profiler {
    /// An empty profiler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f`, adding its time (device synchronized before and after) to `label`'s total.
    pub fn time<T>(&self, label: &'static str, device: &Device, f: impl FnOnce() -> Result<T>) -> Result<T> {
        device.synchronize()?;
        let t = Instant::now();
        let out = f()?;
        device.synchronize()?;
        let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        let entry = totals.entry(label).or_default();
        entry.0 += t.elapsed();
        entry.1 += 1;
        Ok(out)
    }

    /// The totals since the last call, as `(kind, seconds, calls)`, and a reset.
    pub fn take(&self) -> Vec<(&'static str, f64, usize)> {
        let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *totals).into_iter().map(|(k, (d, n))| (k, d.as_secs_f64(), n)).collect()
    }
}

/// Runs `f`, timed under `label` when `profiler` is given.
pub fn timed<T>(
    profiler: Option<&Profiler>,
    label: &'static str,
    device: &Device,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    match profiler {
        Some(p) => p.time(label, device, f),
        None => f(),
    }
}
