//! Shared helpers: a tiny configuration over arcface-data's `lfw-mini` fixture (3 dev
//! training people, 7 images), small enough to train in seconds in a debug build.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use arcface_train::TrainConfig;

/// The LFW fixture directory of arcface-data.
pub fn lfw_mini() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/tests/fixtures/lfw-mini")
}

/// TOML of a tiny run: IResNet-18 layout at width 8, 32 px input, batch 2 (3 batches per epoch).
pub fn tiny_toml(cache: &Path, extra_train: &str, lr: f64) -> String {
    format!(
        r#"
name = "tiny"
seed = 3
[data]
lfw_dir = "{lfw}"
cache_dir = "{cache}"
protocol = "dev"
align = "center"
[model]
backbone = "r18"
width = 8
input_size = 32
num_features = 16
[loss]
scale = 16.0
margin = {{ kind = "arcface", m = 0.3 }}
[optim]
kind = "sgd"
weight_decay = 5e-4
[schedule]
lr = {lr:e}
warmup_epochs = 0.5
[train]
epochs = 2
batch_size = 2
log_every = 1
validate = false
eval_at_end = false
{extra_train}
"#,
        lfw = lfw_mini().display(),
        cache = cache.display(),
    )
}

/// Parses [`tiny_toml`].
pub fn tiny(cache: &Path, extra_train: &str, lr: f64) -> TrainConfig {
    TrainConfig::from_toml_str(&tiny_toml(cache, extra_train, lr), Path::new("tiny.toml"))
        .expect("tiny config")
}
