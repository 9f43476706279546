//! Sub-centers and label smoothing against PyTorch (float64): logits, loss, gradients and
//! top-1 counts. The fixture is written by `fixtures/make_head_options.py`.

mod common;

use arcface_loss::{GradMode, HeadConfig, LossError, Margin};
use candle::{Device, Tensor};
use common::{assert_close, flat, head_with, json_flat, json_matrix};
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
        let (head, w) = head_with(&cfg, &weight);
        let e = candle::Var::from_tensor(&emb).unwrap();
        let out = head.forward(e.as_tensor(), &labels).unwrap();
        let grads = out.loss.backward().unwrap();

        assert_close(&format!("{what} logits"), &flat(&out.logits), &json_flat(&case["logits"]), 1e-9);
        let loss = out.loss.to_scalar::<f64>().unwrap();
        assert_close(&format!("{what} loss"), &[loss], &[case["loss"].as_f64().unwrap()], 1e-9);
        let ge = flat(grads.get(&e).unwrap());
        assert_close(&format!("{what} d/demb"), &ge, &json_flat(&case["grad_emb"]), 1e-7);
        let gw = flat(grads.get(&w).unwrap());
        assert_close(&format!("{what} d/dweight"), &gw, &json_flat(&case["grad_weight"]), 1e-7);
        let correct = out.correct.to_scalar::<u32>().unwrap();
        assert_eq!(correct as u64, case["correct"].as_u64().unwrap(), "{what} correct");
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
