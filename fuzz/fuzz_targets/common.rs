//! A per-process scratch file: the weight readers take paths (and choose the format by extension).

use std::path::PathBuf;

pub fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("arcface-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// candle's pickle reader panics on some malformed pickles; arcface-backbone catches those
/// panics and returns an error, but libFuzzer's panic hook aborts on any panic, caught or not.
/// Panics raised inside candle's pickle.rs are let through to that catch; any other still
/// aborts (and is a finding).
pub fn tolerate_candle_pickle_panics() {
    let abort = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_candle_pickle = info.location().is_some_and(|l| l.file().contains("candle-core") && l.file().ends_with("pickle.rs"));
        if !in_candle_pickle {
            abort(info);
        }
    }));
}
