//! Central finite differences (f64) of the head's loss against autograd, with respect to the
//! embeddings and the class centers, for every margin; and the straight-through mode against
//! the gradient of the plain cosine logits (not the finite difference of its margin loss).

mod common;

use arcface_loss::{GradMode, Margin, MarginHead};
use candle::{Device, Tensor, Var};
use common::{all_margins, assert_close, config, flat, head_with, random};

const N: usize = 5;
const D: usize = 6;
const C: usize = 4;
const H: f64 = 1e-6;

fn inputs() -> (Tensor, Tensor, Tensor) {
    let emb = random(N, D, 1);
    let w = random(C, D, 2);
    // Row 0 almost opposite its center (label 0): deep in ArcFace's fallback region.
    let row0 = (w.get(0).unwrap().affine(-1.0, 0.0).unwrap() + random(1, D, 3).get(0).unwrap() * 0.05).unwrap();
    let emb = Tensor::cat(&[&row0.unsqueeze(0).unwrap(), &emb.narrow(0, 1, N - 1).unwrap()], 0).unwrap();
    let labels = Tensor::new(&[0u32, 1, 2, 3, 1], &Device::Cpu).unwrap();
    (emb, w, labels)
}

/// Central difference of `f` at every entry of `x`.
fn finite_diff(x: &Tensor, f: impl Fn(&Tensor) -> f64) -> Vec<f64> {
    let base = flat(x);
    let shape = x.shape().clone();
    (0..base.len())
        .map(|i| {
            let at = |delta: f64| {
                let mut v = base.clone();
                v[i] += delta;
                f(&Tensor::from_vec(v, shape.clone(), &Device::Cpu).unwrap())
            };
            (at(H) - at(-H)) / (2.0 * H)
        })
        .collect()
}

fn loss_of(margin: Margin, mode: GradMode, emb: &Tensor, w: &Tensor, labels: &Tensor) -> f64 {
    let head = MarginHead::from_weight(&config(C, D, 4.0, margin, mode), w.clone()).unwrap();
    head.forward(emb, labels).unwrap().loss.to_scalar::<f64>().unwrap()
}

/// Autograd gradients (embeddings, weight) of the head's loss.
fn autograd(margin: Margin, mode: GradMode, emb: &Tensor, w: &Tensor, labels: &Tensor) -> (Vec<f64>, Vec<f64>) {
    let (head, wv) = head_with(&config(C, D, 4.0, margin, mode), w);
    let e = Var::from_tensor(emb).unwrap();
    let grads = head.forward(e.as_tensor(), labels).unwrap().loss.backward().unwrap();
    (flat(grads.get(&e).unwrap()), flat(grads.get(&wv).unwrap()))
}

#[test]
fn exact_gradients_match_finite_differences() {
    let (emb, w, labels) = inputs();
    for margin in all_margins() {
        let (ge, gw) = autograd(margin, GradMode::Exact, &emb, &w, &labels);
        let fe = finite_diff(&emb, |e| loss_of(margin, GradMode::Exact, e, &w, &labels));
        let fw = finite_diff(&w, |w| loss_of(margin, GradMode::Exact, &emb, w, &labels));
        assert_close(&format!("{margin:?} d/demb"), &ge, &fe, 1e-6);
        assert_close(&format!("{margin:?} d/dweight"), &gw, &fw, 1e-6);
    }
}

#[test]
fn straight_through_is_the_plain_cosine_gradient() {
    let (emb, w, labels) = inputs();
    for margin in all_margins() {
        let (ge, gw) = autograd(margin, GradMode::StraightThrough, &emb, &w, &labels);
        // dL/dlogits G = (softmax(margin logits) - onehot) / N, then straight through the
        // margin: the gradient is that of the fixed linear form sum(G * s cos(emb, w)).
        let head = MarginHead::from_weight(&config(C, D, 4.0, margin, GradMode::Exact), w.clone()).unwrap();
        let logits = head.forward(&emb, &labels).unwrap().logits;
        let p = candle_nn::ops::softmax(&logits, 1).unwrap();
        let onehot = candle_nn::encoding::one_hot(labels.clone(), C, 1f64, 0f64).unwrap();
        let g = ((p - onehot).unwrap() * (4.0 / N as f64)).unwrap();
        let linear = |e: &Tensor, w: &Tensor| {
            let h = MarginHead::from_weight(&config(C, D, 4.0, Margin::Softmax, GradMode::Exact), w.clone()).unwrap();
            h.cosine(e).unwrap().mul(&g).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap()
        };
        let fe = finite_diff(&emb, |e| linear(e, &w));
        let fw = finite_diff(&w, |w| linear(&emb, w));
        assert_close(&format!("{margin:?} ST d/demb"), &ge, &fe, 1e-6);
        assert_close(&format!("{margin:?} ST d/dweight"), &gw, &fw, 1e-6);
        // The straight-through gradient is *not* the derivative of the margin loss, except
        // where the margin's derivative is 1 (softmax, and CosFace's shift).
        let exact = finite_diff(&emb, |e| loss_of(margin, GradMode::Exact, e, &w, &labels));
        let gap = ge.iter().zip(&exact).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        match margin {
            Margin::Softmax | Margin::CosFace { .. } => assert!(gap < 1e-6, "{margin:?}: gap {gap}"),
            _ => assert!(gap > 1e-3, "{margin:?}: straight-through equals the exact gradient (gap {gap})"),
        }
    }
}
