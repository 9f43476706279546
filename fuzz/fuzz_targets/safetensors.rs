//! `.safetensors` files: the length prefix, the JSON header, offsets against the data.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = arcface_backbone::read_tensors(&common::scratch("fuzz.safetensors", data));
});
