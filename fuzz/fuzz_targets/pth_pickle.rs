//! The pickle inside a `.pth`: the input becomes `data.pkl` of the tiny fixture's zip (CRCs
//! valid), so every case reaches candle's pickle reader and the tensor reads it drives.
#![no_main]

mod common;

use std::io::{Cursor, Read, Write};

use libfuzzer_sys::fuzz_target;

const FIXTURE: &[u8] = include_bytes!("../../crates/backbone/tests/fixtures/tiny/weights.pth");

fn rezip(pkl: &[u8]) -> Vec<u8> {
    let mut src = zip::ZipArchive::new(Cursor::new(FIXTURE)).unwrap();
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..src.len() {
        let mut entry = src.by_index(i).unwrap();
        let name = entry.name().unwrap().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.start_file(name.as_str(), opts).unwrap();
        out.write_all(if name.ends_with("data.pkl") { pkl } else { &data }).unwrap();
    }
    out.finish().unwrap().into_inner()
}

fuzz_target!(init: common::tolerate_candle_pickle_panics(), |data: &[u8]| {
    let _ = arcface_backbone::read_tensors(&common::scratch("fuzz.pth", &rezip(data)));
});
