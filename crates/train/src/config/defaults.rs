//! Serde defaults of the fields this crate owns: one function per default value, named after
//! the field it fills (`#[serde(default = "d_seed")]`), so that the defaults read in one place.
//! Margins, optimizers and decays take their defaults from their own types.

use std::path::PathBuf;

pub(super) fn d_seed() -> u64 {
    42
}
pub(super) fn d_data_dir() -> PathBuf {
    PathBuf::from("data")
}
pub(super) fn d_one() -> usize {
    1
}
pub(super) fn d_true() -> bool {
    true
}
/// Aligned faces train better than the fixed crop (see `DataConfig::align`).
pub(super) fn d_align() -> arcface_data::Align {
    arcface_data::Align::Mtcnn
}
pub(super) fn d_prefetch() -> usize {
    2
}
pub(super) fn d_width() -> usize {
    64
}
pub(super) fn d_input() -> usize {
    112
}
pub(super) fn d_features() -> usize {
    512
}
pub(super) fn d_scale() -> f64 {
    arcface_loss::DEFAULT_SCALE
}
pub(super) fn d_log_every() -> u64 {
    10
}
pub(super) fn d_keep() -> usize {
    3
}
pub(super) fn d_eval_batch() -> usize {
    64
}
