//! Repository invariant: every preset in `configs/` parses and validates.

use arcface_train::TrainConfig;

#[test]
fn every_preset_parses_and_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let cfg = TrainConfig::from_toml_file(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                Some(cfg.name.as_str()),
                path.file_stem().and_then(|s| s.to_str()),
                "name = file name"
            );
            n += 1;
        }
    }
    assert!(n >= 4, "expected the four presets, found {n}");
}

#[test]
fn preset_by_name_and_unknown_preset() {
    assert_eq!(TrainConfig::preset("quick").unwrap().model.width, 16);
    let err = TrainConfig::preset("nope").unwrap_err().to_string();
    assert!(err.contains("quick"), "lists the available presets: {err}");
}
