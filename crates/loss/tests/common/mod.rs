//! Shared helpers of the integration tests (included with `mod common;`).
#![allow(dead_code)]

use arcface_loss::{GradMode, HeadConfig, Margin, MarginHead};
use candle::{DType, Device, Tensor, Var};

/// Every margin family with the parameters the fixture uses.
pub fn all_margins() -> Vec<Margin> {
    vec![
        Margin::Softmax,
        Margin::ArcFace { m: 0.5, easy_margin: false },
        Margin::ArcFace { m: 0.5, easy_margin: true },
        Margin::CosFace { m: 0.35 },
        Margin::SphereFace { m: 4.0 },
        Margin::SphereFace { m: 1.5 },
        Margin::Combined { m1: 1.0, m2: 0.3, m3: 0.2 },
        Margin::Combined { m1: 2.0, m2: 0.1, m3: 0.05 },
        Margin::Combined { m1: 1.35, m2: 0.25, m3: 0.1 },
    ]
}

/// A head config over `c` classes of `d`-dim embeddings.
pub fn config(c: usize, d: usize, scale: f64, margin: Margin, grad_mode: GradMode) -> HeadConfig {
    HeadConfig { num_classes: c, embedding_size: d, scale, margin, grad_mode, ..HeadConfig::arcface(c) }
}

/// Head whose weight is a fresh `Var` holding `w`.
pub fn head_with(cfg: &HeadConfig, w: &Tensor) -> (MarginHead, Var) {
    let var = Var::from_tensor(w).unwrap();
    (MarginHead::from_weight(cfg, var.as_tensor().clone()).unwrap(), var)
}

/// Deterministic pseudo-random f64 values in [-1, 1) (a small LCG: no RNG dependency).
pub fn pseudo_random(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

/// An f64 tensor of shape (r, c) from [`pseudo_random`].
pub fn random(r: usize, c: usize, seed: u64) -> Tensor {
    Tensor::from_vec(pseudo_random(r * c, seed), (r, c), &Device::Cpu).unwrap()
}

/// Flattened f64 values of any tensor.
pub fn flat(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

/// Asserts `|a - b| <= tol * max(1, |b|)` elementwise.
pub fn assert_close(what: &str, a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * y.abs().max(1.0), "{what}[{i}]: got {x}, want {y} (tol {tol})");
    }
}

/// A JSON array of rows as an f64 tensor.
pub fn json_matrix(v: &serde_json::Value) -> Tensor {
    let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).unwrap();
    let (r, c) = (rows.len(), rows[0].len());
    Tensor::from_vec(rows.concat(), (r, c), &Device::Cpu).unwrap()
}

/// A JSON array of rows, flattened.
pub fn json_flat(v: &serde_json::Value) -> Vec<f64> {
    let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).unwrap();
    rows.concat()
}

/// Runs `cfg`'s head with centers `weight` on `emb` / `labels` and checks logits, loss, both
/// gradients and the top-1 count against a PyTorch fixture `case`.
pub fn assert_matches_case(what: &str, cfg: &HeadConfig, weight: &Tensor, emb: &Tensor, labels: &Tensor, case: &serde_json::Value) {
    let (head, w) = head_with(cfg, weight);
    let e = Var::from_tensor(emb).unwrap();
    let out = head.forward(e.as_tensor(), labels).unwrap();
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
