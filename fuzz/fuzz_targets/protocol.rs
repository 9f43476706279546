//! LFW protocol files (pairs, people, View 1 lists, lfw-names.txt) and protocol names.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new("fuzz.txt");
    let _ = arcface_data::protocol::parse_pairs(text, path);
    let _ = arcface_data::protocol::parse_people_folds(text, path);
    let _ = arcface_data::protocol::parse_people_list(text, path);
    let _ = arcface_data::protocol::parse_names(text, path);
    let _ = text.parse::<arcface_data::Protocol>();
});
