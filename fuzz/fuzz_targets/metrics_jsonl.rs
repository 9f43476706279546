//! A run's `metrics.jsonl`, read through `RunDir` as report and resume read it.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = common::scratch("metrics.jsonl", data);
    let _ = arcface_eval::RunDir::new(path.parent().unwrap()).metrics();
});
