//! User photos (JPEG/PNG): `Preprocess::decode`, what `embed`, `verify`, `eval` and the
//! image cache call on every file. A 1-pixel crop lets small decoded images reach the resize.
#![no_main]

use arcface_data::{CropBox, Preprocess};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let pre = Preprocess { crop: CropBox { x: 0, y: 0, width: 1, height: 1 }, size: 4, ..Preprocess::default() };
    let _ = pre.decode(data, "fuzz.jpg");
    let _ = Preprocess::default().decode(data, "fuzz.jpg");
});
