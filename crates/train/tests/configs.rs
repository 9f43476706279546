//! Repository invariants: every preset in `configs/` parses and validates, and is the one
//! compiled into the crate.

use arcface_train::config::PRESETS;
use arcface_train::TrainConfig;

#[test]
fn every_preset_file_is_compiled_in_and_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let cfg = TrainConfig::from_toml_file(&path).unwrap_or_else(|e| panic!("{e}"));
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap();
            assert_eq!(cfg.name, stem, "name = file name");
            let text = std::fs::read_to_string(&path).unwrap();
            let compiled = PRESETS.iter().find(|(name, _)| *name == stem);
            assert_eq!(compiled.map(|(_, t)| *t), Some(text.as_str()), "{stem} is in PRESETS");
            n += 1;
        }
    }
    assert_eq!(n, PRESETS.len(), "PRESETS lists exactly the files in configs/");
}

#[test]
fn preset_by_name_and_unknown_preset() {
    assert_eq!(TrainConfig::preset("quick").unwrap().model.width, 16);
    assert_eq!(TrainConfig::from_spec("quick").unwrap(), TrainConfig::preset("quick").unwrap());
    let err = TrainConfig::preset("nope").unwrap_err().to_string();
    assert!(err.contains("quick"), "lists the available presets: {err}");
}
