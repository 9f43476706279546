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

fn check_eval(dir: &Path, weights: &str, tol: f32) -> Result<f32> {
    let config = read_config(dir)?;
    let (model, _varmap) = load_model(&config, dir.join(weights), &Device::Cpu)?;
    let x = Tensor::read_npy(dir.join("input.npy"))?;
    let want = Tensor::read_npy(dir.join("eval_out.npy"))?;
    let got = model.forward_t(&x, false)?;
    assert_eq!(got.dims(), want.dims());
    let diff = max_abs_diff(&l2_normalize(&got)?, &l2_normalize(&want)?)?;
    assert!(diff < tol, "{weights}: normalized embeddings differ by {diff}");
    Ok(diff)
}

#[test]
fn eval_matches_pytorch_from_pth() -> Result<()> {
    check_eval(&fixture_dir(), "weights.pth", 1e-4)?;
    Ok(())
}

#[test]
fn eval_matches_pytorch_from_safetensors() -> Result<()> {
    check_eval(&fixture_dir(), "weights.safetensors", 1e-4)?;
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
        let diff = check_eval(&dir, weights, 1e-4)?;
        println!("r50 {weights}: max |normalized difference| = {diff:e}");
    }
    Ok(())
}
