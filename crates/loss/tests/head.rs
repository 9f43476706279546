//! Behaviour of the head through its public API: hand-computed values, the margin's reach,
//! the ArcFace fallback, mixed precision, edge values of s and m, errors and configuration.

mod common;

use arcface_loss::{apply_margin, GradMode, HeadConfig, LossError, Margin, MarginHead};
use candle::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use common::{all_margins, assert_close, config, flat, random};

fn hand_example() -> (Tensor, Tensor, Tensor) {
    let emb = Tensor::new(&[[3.0f64, 4.0], [2.0, 0.0]], &Device::Cpu).unwrap();
    let w = Tensor::new(&[[1.0f64, 0.0], [0.0, 1.0], [-1.0, 0.0]], &Device::Cpu).unwrap();
    let labels = Tensor::new(&[0u32, 0], &Device::Cpu).unwrap();
    (emb, w, labels)
}

// Three classes with centers (1,0), (0,1), (-1,0); embeddings (3,4) -> (0.6, 0.8) and
// (2,0) -> (1,0), both labelled 0, s = 2. Cosines: row 0 [0.6, 0.8, -0.6], row 1 [1, 0, -1].
// ArcFace m = 0.5: cos(t + m) = cos t cos m - sin t sin m; row 0: 0.6 * 0.8775825619 -
// 0.8 * 0.4794255386 = 0.1430091063; row 1: cos(0.5) = 0.8775825619.
// Row 0 loss = -0.2860182125 + ln(e^0.2860182125 + e^1.6 + e^-1.2) = 1.5988282602;
// row 1 loss = -1.7551651238 + ln(e^1.7551651238 + e^0 + e^-2) = 0.1792127967.
// CosFace m = 0.35: row 0 target 0.25, loss -0.5 + ln(e^0.5 + e^1.6 + e^-1.2) = 1.4319485533.
#[test]
fn hand_computed_arcface_and_cosface() {
    let (emb, w, labels) = hand_example();
    let arc = Margin::ArcFace { m: 0.5, easy_margin: false };
    let head = MarginHead::from_weight(&config(3, 2, 2.0, arc, GradMode::Exact), w.clone()).unwrap();
    let out = head.forward(&emb, &labels).unwrap();
    let want = [0.2860182125017223, 1.6, -1.2, 1.7551651237807455, 0.0, -2.0];
    assert_close("arcface logits", &flat(&out.logits), &want, 1e-9);
    let loss = out.loss.to_scalar::<f64>().unwrap();
    assert_close("arcface loss", &[loss], &[(1.5988282601808093 + 0.17921279669325174) / 2.0], 1e-9);
    assert_eq!(out.correct.to_scalar::<u32>().unwrap(), 1, "row 0 prefers class 1, row 1 is right");

    let cos_face = config(3, 2, 2.0, Margin::CosFace { m: 0.35 }, GradMode::Exact);
    let head = MarginHead::from_weight(&cos_face, w).unwrap();
    let out = head.forward(&emb.narrow(0, 0, 1).unwrap(), &labels.narrow(0, 0, 1).unwrap()).unwrap();
    assert_close("cosface logits", &flat(&out.logits), &[0.5, 1.6, -1.2], 1e-12);
    assert_close("cosface loss", &[out.loss.to_scalar::<f64>().unwrap()], &[1.431948553264854], 1e-12);
}

#[test]
fn margin_touches_only_the_target_logit() {
    let cos = (random(6, 9, 11) * 0.99).unwrap();
    let labels = Tensor::new(&[0u32, 8, 3, 3, 5, 1], &Device::Cpu).unwrap();
    let plain = flat(&(&cos * 7.0).unwrap());
    let lab = flat(&labels);
    for margin in all_margins() {
        for mode in [GradMode::Exact, GradMode::StraightThrough] {
            let got = flat(&apply_margin(&cos, &labels, &margin, mode, 7.0).unwrap());
            for (i, (g, p)) in got.iter().zip(&plain).enumerate() {
                let (row, col) = (i / 9, i % 9);
                if col as f64 != lab[row] {
                    assert_eq!(g, p, "{margin:?} {mode:?} changed non-target ({row}, {col})");
                } else {
                    // Every margin but Softmax lowers the target logit (the easy margin only
                    // where cos > 0); the literal combined formula with m1 != 1 need not.
                    match margin {
                        Margin::Softmax => assert!((g - p).abs() < 1e-12),
                        Margin::Combined { m1, .. } if m1 != 1.0 => {}
                        Margin::ArcFace { easy_margin: true, .. } if *p <= 0.0 => assert_eq!(g, p),
                        _ => assert!(g < p, "{margin:?} {mode:?} must lower the target ({row}, {col}): {g} vs {p}"),
                    }
                }
            }
        }
    }
}

#[test]
fn arcface_fallback_region() {
    let m: f64 = 0.5;
    let (th, mm) = ((std::f64::consts::PI - m).cos(), (std::f64::consts::PI - m).sin() * m);
    // Angles from 0 to pi: fallback exactly where theta + m > pi (cos <= th).
    let thetas: Vec<f64> = (0..=60).map(|i| i as f64 * std::f64::consts::PI / 60.0).collect();
    let cos: Vec<f64> = thetas.iter().map(|t| t.cos()).collect();
    let n = cos.len();
    let cos_t = Tensor::from_vec(cos.clone(), (n, 1), &Device::Cpu).unwrap();
    let labels = Tensor::zeros(n, DType::U32, &Device::Cpu).unwrap();
    for easy in [false, true] {
        let margin = Margin::ArcFace { m, easy_margin: easy };
        let got = flat(&apply_margin(&cos_t, &labels, &margin, GradMode::Exact, 1.0).unwrap());
        for ((g, c), t) in got.iter().zip(&cos).zip(&thetas) {
            let want = match easy {
                false if *c > th => (t + m).cos(),
                false => c - mm,
                true if *c > 0.0 => (t + m).cos(),
                true => *c,
            };
            assert!((g - want).abs() < 1e-12, "easy={easy} theta={t}: {g} vs {want}");
        }
        if !easy {
            // The fallback keeps the target logit decreasing in theta (no rise past pi).
            assert!(got.windows(2).all(|w| w[1] < w[0]), "not monotonic: {got:?}");
        }
    }
}

#[test]
fn zero_margins_equal_softmax() {
    let cos = (random(4, 7, 5) * 0.999).unwrap();
    let labels = Tensor::new(&[6u32, 0, 2, 2], &Device::Cpu).unwrap();
    let soft = flat(&apply_margin(&cos, &labels, &Margin::Softmax, GradMode::Exact, 30.0).unwrap());
    for margin in [
        Margin::ArcFace { m: 0.0, easy_margin: false },
        Margin::ArcFace { m: 0.0, easy_margin: true },
        Margin::CosFace { m: 0.0 },
        Margin::SphereFace { m: 1.0 },
        Margin::Combined { m1: 1.0, m2: 0.0, m3: 0.0 },
    ] {
        let got = flat(&apply_margin(&cos, &labels, &margin, GradMode::Exact, 30.0).unwrap());
        assert_close(&format!("{margin:?}"), &got, &soft, 1e-12);
    }
}

#[test]
fn large_scale_stays_finite_and_tends_to_the_max_gap() {
    // For large s, CE_i is in [s (max_j f_j - f_y), s (max_j f_j - f_y) + ln C].
    let (emb, w) = (random(8, 16, 21), random(10, 16, 22));
    let labels = Tensor::new(&[0u32, 1, 2, 3, 4, 5, 6, 7], &Device::Cpu).unwrap();
    for s in [1e3, 1e5] {
        for dtype in [DType::F64, DType::F32] {
            let cfg = config(10, 16, s, Margin::ArcFace { m: 0.5, easy_margin: false }, GradMode::Exact);
            let head = MarginHead::from_weight(&cfg, w.to_dtype(dtype).unwrap()).unwrap();
            let out = head.forward(&emb.to_dtype(dtype).unwrap(), &labels).unwrap();
            let loss = flat(&out.loss)[0];
            let logits = flat(&out.logits);
            let gap: f64 = (0..8)
                .map(|i| {
                    let row = &logits[i * 10..(i + 1) * 10];
                    row.iter().cloned().fold(f64::MIN, f64::max) - row[i]
                })
                .sum::<f64>()
                / 8.0;
            assert!(loss.is_finite(), "s={s} {dtype:?}: loss {loss}");
            assert!(loss >= gap * (1.0 - 1e-6) && loss <= gap * (1.0 + 1e-6) + 10f64.ln(), "s={s}: {loss} vs {gap}");
        }
    }
}

#[test]
fn half_precision_is_finite_and_close_to_f32() {
    let (emb, w) = (random(32, 64, 31), random(100, 64, 32));
    let labels: Vec<u32> = (0..32).map(|i| (i * 3) as u32).collect();
    let labels = Tensor::new(labels, &Device::Cpu).unwrap();
    for margin in [Margin::ArcFace { m: 0.5, easy_margin: false }, Margin::CosFace { m: 0.35 }] {
        let cfg = config(100, 64, 64.0, margin, GradMode::Exact);
        let head = MarginHead::from_weight(&cfg, w.to_dtype(DType::F32).unwrap()).unwrap();
        let reference = flat(&head.forward(&emb.to_dtype(DType::F32).unwrap(), &labels).unwrap().loss)[0];
        for (dtype, rel) in [(DType::BF16, 0.03), (DType::F16, 0.005)] {
            let e = candle::Var::from_tensor(&emb.to_dtype(dtype).unwrap()).unwrap();
            let out = head.forward(e.as_tensor(), &labels).unwrap();
            assert_eq!(out.loss.dtype(), DType::F32, "loss is computed in f32");
            let loss = flat(&out.loss)[0];
            assert!(loss.is_finite() && (loss - reference).abs() <= rel * reference, "{dtype:?}: {loss} vs {reference}");
            let grads = out.loss.backward().unwrap();
            assert!(flat(grads.get(&e).unwrap()).iter().all(|g| g.is_finite()), "{dtype:?} gradient");
        }
    }
}

fn error_text(r: candle::Result<impl std::fmt::Debug>) -> String {
    r.expect_err("expected an error").to_string()
}

#[test]
fn bad_inputs_are_errors() {
    let w = random(5, 4, 41);
    let head = MarginHead::from_weight(&config(5, 4, 10.0, Margin::default(), GradMode::Exact), w).unwrap();
    let emb = random(3, 4, 42);
    let labels = Tensor::new(&[0u32, 5, 1], &Device::Cpu).unwrap();
    assert!(matches!(head.check(&emb, &labels), Err(LossError::LabelOutOfRange { row: 1, label: 5, .. })));
    assert!(error_text(head.forward(&emb, &labels)).contains("label 5 at batch row 1"));
    let empty = Tensor::zeros((0, 4), DType::F64, &Device::Cpu).unwrap();
    let no_labels = Tensor::zeros(0, DType::U32, &Device::Cpu).unwrap();
    assert!(matches!(head.check(&empty, &no_labels), Err(LossError::EmptyBatch)));
    assert!(error_text(head.forward(&empty, &no_labels)).contains("empty batch"));
    let wrong_d = random(3, 5, 43);
    let ok_labels = Tensor::new(&[0u32, 1, 2], &Device::Cpu).unwrap();
    assert!(matches!(head.check(&wrong_d, &ok_labels), Err(LossError::Shape { what: "embeddings", .. })));
    let short = Tensor::new(&[0u32, 1], &Device::Cpu).unwrap();
    assert!(matches!(head.check(&emb, &short), Err(LossError::Shape { what: "labels", .. })));
    let float_labels = Tensor::new(&[0f32, 1., 2.], &Device::Cpu).unwrap();
    assert!(matches!(head.check(&emb, &float_labels), Err(LossError::LabelDType(DType::F32))));
    assert!(error_text(head.forward(&emb, &float_labels)).contains("labels must be u32"));
    let cos = random(3, 5, 44);
    assert!(error_text(apply_margin(&cos, &labels, &Margin::Softmax, GradMode::Exact, 1.0)).contains("out of range"));
    assert!(error_text(apply_margin(&cos, &ok_labels, &Margin::Softmax, GradMode::Exact, 0.0)).contains("scale"));
}

#[test]
fn bad_configs_are_errors() {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    for margin in [
        Margin::ArcFace { m: 3.2, easy_margin: false },
        Margin::ArcFace { m: -0.1, easy_margin: false },
        Margin::CosFace { m: f64::NAN },
        Margin::SphereFace { m: 0.5 },
        Margin::Combined { m1: 0.0, m2: 0.0, m3: 0.0 },
    ] {
        assert!(margin.validate().is_err(), "{margin:?}");
        assert!(MarginHead::new(&config(3, 4, 10.0, margin, GradMode::Exact), vb.clone()).is_err());
    }
    assert!(MarginHead::new(&config(0, 4, 10.0, Margin::Softmax, GradMode::Exact), vb.clone()).is_err());
    assert!(MarginHead::new(&config(3, 4, -1.0, Margin::Softmax, GradMode::Exact), vb.clone()).is_err());
    let wrong = Tensor::zeros((4, 3), DType::F32, &Device::Cpu).unwrap();
    assert!(MarginHead::from_weight(&config(3, 4, 10.0, Margin::Softmax, GradMode::Exact), wrong).is_err());
}

#[test]
fn config_serde_and_names() {
    let cfg: HeadConfig = toml::from_str(
        "num_classes = 10\nembedding_size = 512\nscale = 64.0\n\
         margin = { kind = \"arcface\", m = 0.5 }\ngrad_mode = \"straight_through\"\n",
    )
    .unwrap();
    assert_eq!(cfg.margin, Margin::ArcFace { m: 0.5, easy_margin: false });
    assert_eq!(cfg.grad_mode, GradMode::StraightThrough);
    let back: HeadConfig = serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    let minimal: HeadConfig = toml::from_str("num_classes = 3\nembedding_size = 8\n").unwrap();
    assert_eq!(minimal, HeadConfig { embedding_size: 8, ..HeadConfig::arcface(3) });
    for name in ["softmax", "arcface", "cosface", "sphereface", "combined"] {
        assert_eq!(Margin::from_name(name).unwrap().name(), name);
    }
    assert!(Margin::from_name("triplet").is_none());
}

#[test]
fn serde_defaults_are_the_named_settings() {
    // One set of defaults: a margin written with its family alone equals `from_name`.
    for name in ["softmax", "arcface", "cosface", "sphereface", "combined"] {
        let parsed: Margin = toml::from_str(&format!("kind = \"{name}\"")).unwrap();
        assert_eq!(Some(parsed), Margin::from_name(name), "{name}");
    }
    let err = toml::from_str::<Margin>("kind = \"arcface\"\nm = 0.5\nmm = 1.0").unwrap_err();
    assert!(err.to_string().contains("mm"), "{err}");
    assert!(toml::from_str::<Margin>("kind = \"triplet\"").is_err());
    assert_eq!(Margin::from_name("cosface").unwrap().with_m(0.2), Some(Margin::CosFace { m: 0.2 }));
    assert_eq!(Margin::Softmax.with_m(0.2), None);
}

#[test]
fn seeded_init_is_reproducible_and_named_weight() {
    let cfg = HeadConfig { embedding_size: 16, ..HeadConfig::arcface(20) };
    let make = |seed| {
        let vm = VarMap::new();
        let head = MarginHead::init_varmap(&cfg, &vm, "head", DType::F32, &Device::Cpu, seed).unwrap();
        let stored = vm.data().lock().unwrap().get("head.weight").unwrap().as_tensor().clone();
        assert_eq!(flat(&stored), flat(head.weight()), "the head must use the VarMap's variable");
        flat(head.weight())
    };
    assert_eq!(make(3), make(3));
    assert_ne!(make(3), make(4));
    // Trainable: gradients reach the VarMap variable.
    let vm = VarMap::new();
    let head = MarginHead::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
    let emb = random(4, 16, 51).to_dtype(DType::F32).unwrap();
    let labels = Tensor::new(&[0u32, 1, 2, 19], &Device::Cpu).unwrap();
    let grads = head.forward(&emb, &labels).unwrap().loss.backward().unwrap();
    let var = vm.data().lock().unwrap().get("weight").unwrap().clone();
    assert!(grads.get(&var).is_some());
}

#[test]
fn gradients_stay_finite_at_cos_plus_minus_one() {
    // Embeddings exactly on (and opposite) their centers: sin(theta) = 0, where a naive
    // sqrt(1 - cos^2) has an infinite derivative.
    let w = Tensor::new(&[[1.0f64, 0.0], [0.0, 1.0]], &Device::Cpu).unwrap();
    let labels = Tensor::new(&[0u32, 1], &Device::Cpu).unwrap();
    for dtype in [DType::F64, DType::F32] {
        let emb = Tensor::new(&[[2.0f64, 0.0], [0.0, -3.0]], &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
        for margin in all_margins() {
            for mode in [GradMode::Exact, GradMode::StraightThrough] {
                let (head, wv) = common::head_with(&config(2, 2, 8.0, margin, mode), &w.to_dtype(dtype).unwrap());
                let e = candle::Var::from_tensor(&emb).unwrap();
                let out = head.forward(e.as_tensor(), &labels).unwrap();
                let grads = out.loss.backward().unwrap();
                let all = [flat(&out.logits), flat(grads.get(&e).unwrap()), flat(grads.get(&wv).unwrap())].concat();
                assert!(all.iter().all(|v| v.is_finite()), "{margin:?} {mode:?} {dtype:?}: {all:?}");
            }
        }
    }
}
