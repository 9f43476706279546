//! Sub-centers and label smoothing against PyTorch (float64): logits, loss, gradients and
//! top-1 counts. The fixture is written by `fixtures/make_head_options.py`.

mod common;

use arcface_loss::{GradMode, HeadConfig, LossError, Margin};
use candle::{Device, Tensor};
use common::{assert_matches_case, json_matrix};
use serde_json::Value;

// python3 crates/loss/tests/fixtures/make_head_options.py (in that folder) regenerates it.
#[test]
fn sub_centers_and_label_smoothing_match_pytorch() {
    let fx: Value = serde_json::from_str(include_str!("fixtures/head_options.json")).unwrap();
    let emb = json_matrix(&fx["embeddings"]);
    let labels: Vec<u32> = serde_json::from_value(fx["labels"].clone()).unwrap();
    let labels = Tensor::new(labels, &Device::Cpu).unwrap();
    let cases = fx["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        let k = case["sub_centers"].as_u64().unwrap() as usize;
        let weight = json_matrix(&fx["weights"][k.to_string()]);
        let cfg = HeadConfig {
            embedding_size: emb.dim(1).unwrap(),
            scale: case["scale"].as_f64().unwrap(),
            margin: serde_json::from_value::<Margin>(case["margin"].clone()).unwrap(),
            grad_mode: serde_json::from_value::<GradMode>(case["grad_mode"].clone()).unwrap(),
            sub_centers: k,
            label_smoothing: case["label_smoothing"].as_f64().unwrap(),
            ..HeadConfig::arcface(weight.dim(0).unwrap() / k)
        };
        let what = format!("K={k} eps={} {:?} {:?}", cfg.label_smoothing, cfg.margin, cfg.grad_mode);
        assert_matches_case(&what, &cfg, &weight, &emb, &labels, case);
    }
}

#[test]
fn the_weight_has_k_rows_per_class_and_bad_options_are_refused() {
    let cfg = HeadConfig { embedding_size: 4, sub_centers: 3, ..HeadConfig::arcface(5) };
    assert_eq!(cfg.num_centers(), 15);
    let wrong = Tensor::zeros((5, 4), candle::DType::F32, &Device::Cpu).unwrap();
    assert!(arcface_loss::MarginHead::from_weight(&cfg, wrong).is_err());
    for bad in [
        HeadConfig { sub_centers: 0, ..cfg.clone() },
        HeadConfig { label_smoothing: 1.0, ..cfg.clone() },
        HeadConfig { label_smoothing: -0.1, ..cfg.clone() },
        HeadConfig { label_smoothing: f64::NAN, ..cfg.clone() },
    ] {
        assert!(matches!(bad.validate(), Err(LossError::InvalidConfig(_))), "{bad:?}");
    }
}
