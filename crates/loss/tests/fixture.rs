//! Logits, loss, gradients and top-1 counts against PyTorch (float64, `torch.acos`) for every
//! margin and both gradient modes. The fixture is written by `fixtures/make_fixture.py`.

mod common;

use arcface_loss::{GradMode, Margin};
use candle::{Device, Tensor};
use common::{assert_matches_case, config, json_matrix};
use serde_json::Value;

// python3 crates/loss/tests/fixtures/make_fixture.py (in that folder) regenerates margins.json.
#[test]
fn matches_pytorch_for_every_margin_and_grad_mode() {
    let text = include_str!("fixtures/margins.json");
    let fx: Value = serde_json::from_str(text).unwrap();
    let emb = json_matrix(&fx["embeddings"]);
    let weight = json_matrix(&fx["weight"]);
    let labels: Vec<u32> = serde_json::from_value(fx["labels"].clone()).unwrap();
    let labels = Tensor::new(labels, &Device::Cpu).unwrap();
    let cases = fx["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 19);
    let mut seen_fallback = false;
    for case in cases {
        let margin: Margin = serde_json::from_value(case["margin"].clone()).unwrap();
        let mode: GradMode = serde_json::from_value(case["grad_mode"].clone()).unwrap();
        let scale = case["scale"].as_f64().unwrap();
        let what = format!("{margin:?} {mode:?} s={scale}");
        let cfg = config(weight.dim(0).unwrap(), weight.dim(1).unwrap(), scale, margin, mode);
        assert_matches_case(&what, &cfg, &weight, &emb, &labels, case);
        let th = (std::f64::consts::PI - 0.5).cos();
        seen_fallback |= case["target_cos"].as_array().unwrap().iter().any(|t| t.as_f64().unwrap() <= th);
    }
    assert!(seen_fallback, "the fixture must exercise the ArcFace fallback region");
}
