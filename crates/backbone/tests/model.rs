//! Construction, initialisation, trainable set and weight round trips through the public API.

use std::collections::HashMap;

use anyhow::Result;
use arcface_backbone::{
    init_varmap, load_weights, save_weights, trainable_vars, Config, ConvKernel, Error, IResNet, KernelOptions, ParamKind,
};
use candle::{DType, Device, Tensor};
use candle_nn::{ModuleT, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};

fn tiny() -> Config {
    Config { layers: [2, 1, 1, 1], width: 4, input_size: 32, num_features: 16, dropout: 0.0 }
}

fn values(varmap: &VarMap) -> HashMap<String, Vec<f32>> {
    let data = varmap.data().lock().unwrap();
    data.iter().map(|(k, v)| (k.clone(), v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())).collect()
}

#[test]
fn keys_and_param_count_match_config() -> Result<()> {
    let cfg = tiny();
    let varmap = VarMap::new();
    init_varmap(&cfg, &varmap, &Device::Cpu, 0)?;
    let data = varmap.data().lock().unwrap();
    for key in [
        "conv1.weight", "bn1.running_var", "prelu.weight", "layer1.0.bn1.weight", "layer1.0.conv1.weight",
        "layer1.0.bn2.bias", "layer1.0.prelu.weight", "layer1.0.conv2.weight", "layer1.0.bn3.running_mean",
        "layer1.0.downsample.0.weight", "layer1.0.downsample.1.weight", "layer4.0.downsample.1.bias",
        "bn2.weight", "fc.weight", "fc.bias", "features.weight", "features.bias", "features.running_var",
    ] {
        assert!(data.contains_key(key), "missing {key}");
    }
    assert!(!data.contains_key("layer1.1.downsample.0.weight"));
    let params: usize =
        data.iter().filter(|(k, _)| ParamKind::of(k) != ParamKind::Buffer).map(|(_, v)| v.elem_count()).sum();
    assert_eq!(params, cfg.num_params());
    Ok(())
}

#[test]
fn init_follows_insightface_and_is_seeded() -> Result<()> {
    let cfg = Config { width: 16, ..tiny() };
    let (a, b, c) = (VarMap::new(), VarMap::new(), VarMap::new());
    init_varmap(&cfg, &a, &Device::Cpu, 7)?;
    init_varmap(&cfg, &b, &Device::Cpu, 7)?;
    init_varmap(&cfg, &c, &Device::Cpu, 8)?;
    let (va, vb, vc) = (values(&a), values(&b), values(&c));
    assert_eq!(va, vb);
    assert_ne!(va["layer2.0.conv1.weight"], vc["layer2.0.conv1.weight"]);
    // All conv weights pooled: ~N(0, 0.1).
    let conv: Vec<f32> = va.iter().filter(|(k, _)| ParamKind::of(k) == ParamKind::Conv).flat_map(|(_, v)| v.clone()).collect();
    let n = conv.len() as f64;
    let mean = conv.iter().map(|&x| x as f64).sum::<f64>() / n;
    let std = (conv.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!(n > 50_000.0 && mean.abs() < 0.003 && (std - 0.1).abs() < 0.003, "n {n} mean {mean} std {std}");
    let bound = 1.0 / (cfg.fc_in() as f32).sqrt();
    assert!(va["fc.weight"].iter().chain(&va["fc.bias"]).all(|x| x.abs() <= bound));
    let fc = &va["fc.weight"];
    let fc_std = (fc.iter().map(|&x| (x * x) as f64).sum::<f64>() / fc.len() as f64).sqrt();
    assert!((fc_std - bound as f64 / 3f64.sqrt()).abs() < 0.05 * bound as f64);
    for (k, v) in &va {
        let want = match ParamKind::of(k) {
            ParamKind::BnWeight | ParamKind::FrozenBnWeight => Some(1.0),
            ParamKind::BnBias => Some(0.0),
            ParamKind::PRelu => Some(0.25),
            ParamKind::Buffer if k.ends_with("running_var") => Some(1.0),
            ParamKind::Buffer => Some(0.0),
            _ => None,
        };
        if let Some(w) = want {
            assert!(v.iter().all(|&x| x == w), "{k} not constant {w}");
        }
    }
    Ok(())
}

#[test]
fn training_step_reaches_every_trainable_var_and_no_buffer() -> Result<()> {
    let cfg = tiny();
    let varmap = VarMap::new();
    let model = init_varmap(&cfg, &varmap, &Device::Cpu, 1)?;
    let x = Tensor::randn(0f32, 1., (3, 3, 32, 32), &Device::Cpu)?;
    let y = model.forward_t(&x, true)?;
    assert_eq!(y.dims(), &[3, 16]);
    let target = Tensor::randn(0f32, 1., (3, 16), &Device::Cpu)?;
    let grads = ((y - target)?.sqr()?.sum_all()?).backward()?;
    let trainable = trainable_vars(&varmap);
    let data = varmap.data().lock().unwrap();
    assert_eq!(trainable.len(), data.keys().filter(|k| ParamKind::of(k).is_trainable()).count());
    for v in &trainable {
        assert!(grads.get(v.as_tensor()).is_some(), "a trainable var got no gradient");
    }
    for (k, v) in data.iter() {
        if !ParamKind::of(k).is_trainable() {
            assert!(grads.get(v.as_tensor()).is_none(), "{k} got a gradient");
            assert!(!trainable.iter().any(|t| t.as_tensor().id() == v.as_tensor().id()), "{k} is trainable");
        }
    }
    Ok(())
}

#[test]
fn save_load_round_trip_and_strict_errors() -> Result<()> {
    let cfg = tiny();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("w.safetensors");
    let src = VarMap::new();
    let model = init_varmap(&cfg, &src, &Device::Cpu, 3)?;
    // Move the running statistics away from their initial values before saving.
    let x = Tensor::randn(0f32, 1., (2, 3, 32, 32), &Device::Cpu)?;
    model.forward_t(&x, true)?;
    save_weights(&src, &path)?;
    let dst = VarMap::new();
    let loaded = init_varmap(&cfg, &dst, &Device::Cpu, 4)?;
    load_weights(&dst, &path)?;
    assert_eq!(values(&src), values(&dst));
    let diff = (model.forward_t(&x, false)? - loaded.forward_t(&x, false)?)?.abs()?.max_all()?.to_scalar::<f32>()?;
    assert_eq!(diff, 0.0);

    // A different model: every kind of mismatch in one error.
    let other = Config { layers: [1, 1, 1, 1], num_features: 8, ..cfg };
    let wrong = VarMap::new();
    init_varmap(&other, &wrong, &Device::Cpu, 0)?;
    wrong.data().lock().unwrap().insert("extra.weight".into(), candle::Var::zeros(1, DType::F32, &Device::Cpu)?);
    match load_weights(&wrong, &path) {
        Err(Error::Mismatch { missing, unexpected, wrong_shape, .. }) => {
            assert_eq!(missing, vec!["extra.weight".to_string()]);
            assert!(unexpected.iter().any(|k| k == "layer1.1.conv1.weight"));
            assert!(wrong_shape.iter().any(|m| m.name == "fc.weight" && m.expected == vec![8, 128]));
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    let msg = load_weights(&wrong, &path).unwrap_err().to_string();
    assert!(msg.contains("w.safetensors") && msg.contains("missing 1: extra.weight"), "{msg}");
    assert!(matches!(load_weights(&dst, dir.path().join("w.onnx")), Err(Error::UnknownFormat { .. })));
    assert!(matches!(load_weights(&dst, dir.path().join("none.pth")), Err(Error::File { .. })));
    Ok(())
}

#[test]
fn damaged_or_integer_weights_are_refused_naming_file_and_tensor() -> Result<()> {
    let cfg = tiny();
    let dir = tempfile::tempdir()?;
    let src = VarMap::new();
    init_varmap(&cfg, &src, &Device::Cpu, 3)?;
    let good: HashMap<String, Tensor> =
        src.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
    let dst = VarMap::new();
    init_varmap(&cfg, &dst, &Device::Cpu, 4)?;
    let before = values(&dst);

    // One NaN in one tensor, as a flipped exponent byte in a damaged file gives.
    let mut damaged = good.clone();
    let w = damaged["fc.weight"].flatten_all()?.to_vec1::<f32>()?;
    let mut w2 = w.clone();
    w2[5] = f32::NAN;
    damaged.insert("fc.weight".into(), Tensor::from_vec(w2, damaged["fc.weight"].shape(), &Device::Cpu)?);
    let path = dir.path().join("nan.safetensors");
    candle::safetensors::save(&damaged, &path)?;
    let msg = load_weights(&dst, &path).unwrap_err().to_string();
    assert!(msg.contains("nan.safetensors") && msg.contains("`fc.weight`") && msg.contains("1 NaN"), "{msg}");

    // Integer tensors would load as whole numbers and embed to garbage without a word.
    let mut ints = good.clone();
    ints.insert("fc.weight".into(), damaged["fc.weight"].zeros_like()?.to_dtype(DType::U8)?);
    let path = dir.path().join("ints.safetensors");
    candle::safetensors::save(&ints, &path)?;
    let msg = load_weights(&dst, &path).unwrap_err().to_string();
    assert!(msg.contains("integer dtype"), "{msg}");
    // A refused file changes nothing.
    assert_eq!(values(&dst), before);
    Ok(())
}

#[test]
fn invalid_config_and_input_fail_cleanly() -> Result<()> {
    let vb = VarBuilder::zeros(DType::F32, &Device::Cpu);
    assert!(IResNet::new(&Config { input_size: 40, ..tiny() }, vb.clone()).is_err());
    let model = IResNet::new(&tiny(), vb)?;
    let bad = Tensor::zeros((1, 3, 64, 64), DType::F32, &Device::Cpu)?;
    assert!(model.forward_t(&bad, false).is_err());
    Ok(())
}

#[test]
fn fast_and_candle_convolutions_give_the_same_step() -> Result<()> {
    let cfg = tiny();
    let varmap = VarMap::new();
    let fast = init_varmap(&cfg, &varmap, &Device::Cpu, 5)?;
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let reference = IResNet::with_kernels(&cfg, &KernelOptions { conv: ConvKernel::Candle, ..Default::default() }, vb)?;
    // A seeded input, so that the tolerance below holds on every run.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let data: Vec<f32> = (0..4 * 3 * 32 * 32).map(|_| rng.gen_range(-1.7f32..1.7)).collect();
    let x = Tensor::from_vec(data, (4, 3, 32, 32), &Device::Cpu)?;
    let run = |m: &IResNet| -> candle::Result<(Tensor, candle::backprop::GradStore)> {
        let y = m.forward_t(&x, true)?;
        let g = y.sqr()?.mean_all()?.backward()?;
        Ok((y, g))
    };
    let (y1, g1) = run(&fast)?;
    let (y2, g2) = run(&reference)?;
    assert!((y1 - y2)?.abs()?.max_all()?.to_scalar::<f32>()? < 1e-4);
    let data = varmap.data().lock().unwrap();
    for (name, v) in data.iter().filter(|(k, _)| ParamKind::of(k).is_trainable()) {
        let (a, b) = (g1.get(v.as_tensor()).unwrap(), g2.get(v.as_tensor()).unwrap());
        let scale = b.abs()?.max_all()?.to_scalar::<f32>()?;
        let diff = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
        // Absolute slack for biases whose exact gradient is 0 (a train-mode BN follows them:
        // only rounding noise of ~1e-7 remains); relative slack for f32 summation order
        // through the BN backward at batch 4.
        assert!(diff < 1e-6 + 5e-3 * scale, "{name}: gradient differs by {diff} (scale {scale})");
    }
    Ok(())
}
