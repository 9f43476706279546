//! Forward time per layer kind, for finding where a step goes: with `ARCFACE_PROFILE=1` in
//! the environment, convolutions, BatchNorms, PReLUs, residual adds and the FC layer
//! synchronize the device around their forward and add the wall time to a per-kind total
//! (`arcface bench --breakdown` prints it). Off, it costs one cached flag check per layer.
//! The synchronizations slow a GPU step down; the totals are for comparing kinds, not for
//! quoting as throughput. Backward passes run inside candle's `backward()` and are not split.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use candle::{Device, Result};

static TOTALS: Mutex<BTreeMap<&'static str, (Duration, usize)>> = Mutex::new(BTreeMap::new());

/// Whether `ARCFACE_PROFILE=1` was set (read once).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("ARCFACE_PROFILE").is_ok_and(|v| v == "1"))
}

/// Runs `f`, adding its time (device synchronized before and after) to `label`'s total when
/// profiling is on.
pub(crate) fn timed<T>(label: &'static str, device: &Device, f: impl FnOnce() -> Result<T>) -> Result<T> {
    if !enabled() {
        return f();
    }
    device.synchronize()?;
    let t = Instant::now();
    let out = f()?;
    device.synchronize()?;
    let mut totals = TOTALS.lock().unwrap_or_else(|e| e.into_inner());
    let entry = totals.entry(label).or_default();
    entry.0 += t.elapsed();
    entry.1 += 1;
    Ok(out)
}

/// The totals since the last call, as `(kind, seconds, calls)`, and a reset.
pub fn take() -> Vec<(&'static str, f64, usize)> {
    let mut totals = TOTALS.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::take(&mut *totals).into_iter().map(|(k, (d, n))| (k, d.as_secs_f64(), n)).collect()
}
