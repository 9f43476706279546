//! Shared helpers: a tiny random IResNet saved as a run folder, and fixture paths.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use arcface_backbone::{init_varmap, save_weights, Config};
use arcface_data::Preprocess;
use arcface_eval::ModelInfo;
use candle_nn::VarMap;

/// arcface-data's mini LFW (a few identities, real JPEGs and protocol files).
pub fn lfw_mini() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/tests/fixtures/lfw-mini")
}

/// This crate's fixtures.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A small but real IResNet: one block per stage, width 8, 112 input, 32-d output.
pub fn tiny_config() -> Config {
    Config {
        layers: [1, 1, 1, 1],
        width: 8,
        input_size: 112,
        num_features: 32,
        dropout: 0.0,
    }
}

/// Writes `model.json` and `model.safetensors` of a randomly initialised tiny model.
pub fn make_run(dir: &Path, seed: u64) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let varmap = VarMap::new();
    init_varmap(&tiny_config(), &varmap, &candle::Device::Cpu, seed).unwrap();
    save_weights(&varmap, dir.join("model.safetensors")).unwrap();
    let info = ModelInfo {
        backbone: tiny_config(),
        preprocess: Preprocess::default(),
        loss: "arcface".into(),
        protocol: "dev".into(),
        fold: None,
    };
    arcface_eval::RunDir::new(dir).write_model_info(&info).unwrap();
    dir.to_path_buf()
}
