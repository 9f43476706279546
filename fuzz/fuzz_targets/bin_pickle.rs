//! InsightFace verification `.bin` pickles, and the image-size check eval runs on them.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.bin");
    if let Ok(set) = arcface_eval::bin::parse_bin(data, path) {
        let _ = set.image_size(path);
    }
});
