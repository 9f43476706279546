//! Training configuration TOML; what loads must write back and load to the same value.
#![no_main]

use std::path::Path;

use arcface_train::TrainConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let origin = Path::new("fuzz.toml");
    if let Ok(cfg) = TrainConfig::from_toml_str(text, origin) {
        let back = TrainConfig::from_toml_str(&cfg.to_toml(), origin).expect("a loaded config writes back loadable");
        assert_eq!(back, cfg);
    }
});
