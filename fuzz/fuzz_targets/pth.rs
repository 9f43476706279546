//! PyTorch `.pth` files as bytes: the zip reader, the CRC check, then candle's pickle reader.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: common::tolerate_candle_pickle_panics(), |data: &[u8]| {
    let _ = arcface_backbone::read_tensors(&common::scratch("fuzz.pth", data));
});
