//! Parity of the candle IResNet with an independent PyTorch implementation.
//!
//! Fixtures: `python3 crates/backbone/tests/fixtures/make_fixture.py` writes `fixtures/tiny/`
//! (layers [2,2,1,1], width 4, input 32, 64 features, random weights and BN statistics,
//! batch of 4): `weights.pth`, `weights.safetensors`, `input.npy`, `eval_out.npy` (eval-mode
//! output) and `train.npz` (train-mode output + running statistics after that forward).

use std::path::{Path, PathBuf};

use anyhow::Result;
use arcface_backbone::{load_model, Config};
use candle::{Device, Tensor, D};
use candle_nn::ModuleT;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny")
}

fn read_config(dir: &Path) -> Result<Config> {
    Ok(serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?)
}

fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    Ok(x.broadcast_div(&x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?)?)
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
    Ok((a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?)
}

/// Eval-mode parity of the network loaded from `weights`, or of its [`IResNet::frozen`] copy
/// (BatchNorms folded, Winograd convolutions).
fn check_eval(dir: &Path, weights: &str, frozen: bool, tol: f32) -> Result<f32> {
    let config = read_config(dir)?;
    let (model, _varmap) = load_model(&config, dir.join(weights), &Device::Cpu)?;
    let model = if frozen { model.frozen()? } else { model };
    let x = Tensor::read_npy(dir.join("input.npy"))?;
    let want = Tensor::read_npy(dir.join("eval_out.npy"))?;
    let got = model.forward_t(&x, false)?;
    assert_eq!(got.dims(), want.dims());
    let diff = max_abs_diff(&l2_normalize(&got)?, &l2_normalize(&want)?)?;
    assert!(diff < tol, "{weights} (frozen: {frozen}): normalized embeddings differ by {diff}");
    Ok(diff)
}

#[test]
fn eval_matches_pytorch_from_pth() -> Result<()> {
    check_eval(&fixture_dir(), "weights.pth", false, 1e-4)?;
    Ok(())
}

#[test]
fn eval_matches_pytorch_from_safetensors() -> Result<()> {
    check_eval(&fixture_dir(), "weights.safetensors", false, 1e-4)?;
    Ok(())
}

#[test]
fn frozen_eval_matches_pytorch() -> Result<()> {
    check_eval(&fixture_dir(), "weights.safetensors", true, 1e-4)?;
    Ok(())
}

/// The frozen copy is a snapshot (a later load into the VarMap does not reach it) and refuses
/// training forwards.
#[test]
fn frozen_copy_is_a_snapshot_for_eval_only() -> Result<()> {
    let dir = fixture_dir();
    let config = read_config(&dir)?;
    let (model, varmap) = load_model(&config, dir.join("weights.safetensors"), &Device::Cpu)?;
    let frozen = model.frozen()?;
    assert!(frozen.is_frozen() && !model.is_frozen());
    let x = Tensor::read_npy(dir.join("input.npy"))?;
    let before = frozen.forward_t(&x, false)?;
    for var in varmap.all_vars() {
        var.set(&var.as_tensor().affine(0.5, 0.1)?)?;
    }
    assert_eq!(max_abs_diff(&frozen.forward_t(&x, false)?, &before)?, 0.0);
    assert!(max_abs_diff(&model.forward_t(&x, false)?, &before)? > 1e-3);
    let e = frozen.forward_t(&x, true).unwrap_err().to_string();
    assert!(e.contains("frozen"), "{e}");
    Ok(())
}

#[test]
fn train_forward_matches_pytorch_and_updates_running_stats() -> Result<()> {
    let dir = fixture_dir();
    let config = read_config(&dir)?;
    let (model, varmap) = load_model(&config, dir.join("weights.safetensors"), &Device::Cpu)?;
    let x = Tensor::read_npy(dir.join("input.npy"))?;
    let got = model.forward_t(&x, true)?;
    let expected = Tensor::read_npz(dir.join("train.npz"))?;
    let mut checked = 0;
    let data = varmap.data().lock().unwrap();
    for (name, want) in &expected {
        if name == "out" {
            let diff = max_abs_diff(&got, want)?;
            assert!(diff < 1e-4, "train-mode output differs by {diff}");
        } else {
            let var = data.get(name).unwrap_or_else(|| panic!("model lacks {name}"));
            let diff = max_abs_diff(var.as_tensor(), want)?;
            assert!(diff < 1e-5, "{name} differs by {diff} after one train-mode forward");
            checked += 1;
        }
    }
    // 2 per BatchNorm: stem, bn2, features, 3 per block x 6 blocks, 4 downsample BNs.
    assert_eq!(checked, 2 * (3 + 18 + 4));
    Ok(())
}

/// Full-size check, run by hand:
/// `python3 crates/backbone/tests/fixtures/make_fixture.py --full r50 --out /tmp/r50` then
/// `ARCFACE_R50_FIXTURE=/tmp/r50 cargo test -p arcface-backbone --test parity -- --ignored --nocapture`.
#[test]
#[ignore]
fn full_r50_matches_pytorch() -> Result<()> {
    let dir = PathBuf::from(std::env::var("ARCFACE_R50_FIXTURE")?);
    for weights in ["weights.pth", "weights.safetensors"] {
        for frozen in [false, true] {
            let diff = check_eval(&dir, weights, frozen, 1e-4)?;
            println!("r50 {weights} (frozen: {frozen}): max |normalized difference| = {diff:e}");
        }
    }
    Ok(())
}
