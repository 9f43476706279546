//! Serde defaults of the configuration fields: one function per default value, named after
//! the field it fills (`#[serde(default = "d_seed")]`), so that the defaults read in one place.

use std::path::PathBuf;

pub(super) fn d_seed() -> u64 {
    42
}
pub(super) fn d_source() -> String {
    "lfw".into()
}
pub(super) fn d_data_dir() -> PathBuf {
    PathBuf::from("data")
}
pub(super) fn d_protocol() -> String {
    "dev".into()
}
pub(super) fn d_one() -> usize {
    1
}
pub(super) fn d_true() -> bool {
    true
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
    64.0
}
pub(super) fn d_m1() -> f64 {
    1.0
}
pub(super) fn d_m2() -> f64 {
    0.5
}
pub(super) fn d_grad_mode() -> String {
    "exact".into()
}
pub(super) fn d_sgd() -> String {
    "sgd".into()
}
pub(super) fn d_momentum() -> f64 {
    0.9
}
pub(super) fn d_wd() -> f64 {
    5e-4
}
pub(super) fn d_betas() -> [f64; 2] {
    [0.9, 0.999]
}
pub(super) fn d_eps() -> f64 {
    1e-8
}
pub(super) fn d_poly() -> String {
    "poly".into()
}
pub(super) fn d_power() -> f64 {
    2.0
}
pub(super) fn d_gamma() -> f64 {
    0.1
}
pub(super) fn d_precision() -> String {
    "f32".into()
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
