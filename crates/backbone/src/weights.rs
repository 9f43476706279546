//! Saving and strictly loading backbone weights under InsightFace's `state_dict` keys:
//! our safetensors files and InsightFace's published PyTorch `backbone.pth` pickles.
//!
//! Reference: InsightFace `arcface_torch` saves `torch.save(backbone.module.state_dict())`;
//! PyTorch's `num_batches_tracked` counters are ignored on load and not written on save.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle::{DType, Device, Tensor};
use candle_nn::VarMap;

use crate::config::Config;
use crate::error::{Error, Result, ShapeMismatch};
use crate::iresnet::IResNet;

fn file_err(path: &Path) -> impl FnOnce(candle::Error) -> Error + '_ {
    move |source| Error::File { path: path.to_path_buf(), source }
}

/// Reads every tensor of a `.safetensors` or PyTorch (`.pth`, `.pt`, `.bin`) file onto the
/// CPU, dropping `num_batches_tracked` and a DataParallel `module.` prefix.
pub fn read_tensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let raw: Vec<(String, Tensor)> = match ext.as_str() {
        "safetensors" => candle::safetensors::load(path, &Device::Cpu).map_err(file_err(path))?.into_iter().collect(),
        "pth" | "pt" | "bin" => crate::pth::read_pth(path)?,
        _ => return Err(Error::UnknownFormat { path: path.to_path_buf() }),
    };
    let all_prefixed = !raw.is_empty() && raw.iter().all(|(k, _)| k.starts_with("module."));
    Ok(raw
        .into_iter()
        .filter(|(k, _)| !k.ends_with("num_batches_tracked"))
        .map(|(k, t)| {
            let k = if all_prefixed { k["module.".len()..].to_string() } else { k };
            (k, t)
        })
        .collect())
}

/// Loads `path` into the variables of `varmap`, strictly: a missing, unexpected or wrongly
/// shaped tensor fails the whole load (nothing is written) with one error listing them all.
/// Values are converted to each variable's dtype and device.
pub fn load_weights(varmap: &VarMap, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let tensors = read_tensors(path)?;
    let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    let model_keys: BTreeSet<&String> = data.keys().collect();
    let file_keys: BTreeSet<&String> = tensors.keys().collect();
    let missing: Vec<String> = model_keys.difference(&file_keys).map(|k| k.to_string()).collect();
    let unexpected: Vec<String> = file_keys.difference(&model_keys).map(|k| k.to_string()).collect();
    let wrong_shape: Vec<ShapeMismatch> = model_keys
        .intersection(&file_keys)
        .filter_map(|k| {
            let (expected, found) = (data[*k].dims().to_vec(), tensors[*k].dims().to_vec());
            (expected != found).then(|| ShapeMismatch { name: k.to_string(), expected, found })
        })
        .collect();
    if !missing.is_empty() || !unexpected.is_empty() || !wrong_shape.is_empty() {
        return Err(Error::Mismatch { path: path.to_path_buf(), missing, unexpected, wrong_shape });
    }
    for name in data.keys() {
        check_values(path, name, &tensors[name])?;
    }
    for (name, var) in data.iter() {
        let t = tensors[name].to_dtype(var.dtype())?.to_device(var.device())?;
        var.set(&t).map_err(file_err(path))?;
    }
    Ok(())
}

/// Refuses a tensor that no trained model holds: integers (they would load as whole numbers,
/// silently) or any NaN or infinity (a damaged file would otherwise give NaN embeddings and a
/// verdict computed from them).
fn check_values(path: &Path, name: &str, t: &Tensor) -> Result<()> {
    let bad = |reason: String| Error::BadValues { path: path.to_path_buf(), name: name.to_string(), reason };
    if !matches!(t.dtype(), DType::F16 | DType::BF16 | DType::F32 | DType::F64) {
        return Err(bad(format!("has integer dtype {:?}", t.dtype())));
    }
    let values = t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    let non_finite = values.iter().filter(|v| !v.is_finite()).count();
    if non_finite > 0 {
        return Err(bad(format!("has {non_finite} NaN or infinite value(s) of {}", values.len())));
    }
    Ok(())
}

/// Writes every variable of `varmap` to a safetensors file under its key (InsightFace
/// names for a backbone). The file is written next to `path` and renamed into place, so a
/// crash never leaves a truncated file behind.
pub fn save_weights(varmap: &VarMap, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let tensors: HashMap<String, Tensor> = {
        let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        data.iter().map(|(k, v)| (k.clone(), v.as_tensor().detach())).collect()
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    candle::safetensors::save(&tensors, &tmp).map_err(file_err(path))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::File { path: path.to_path_buf(), source: e.into() })?;
    Ok(())
}

/// Builds `config`'s IResNet on `device` and loads `path` into it (strict); the returned
/// VarMap holds the variables (f32).
/// The layers run on the default kernels.
pub fn load_model(config: &Config, path: impl AsRef<Path>, device: &Device) -> Result<(IResNet, VarMap)> {
    load_model_with(config, &arcface_kernels::KernelOptions::default(), path, device)
}

/// As [`load_model`], with the layers on the kernels `kernels` chooses.
pub fn load_model_with(
    config: &Config,
    kernels: &arcface_kernels::KernelOptions,
    path: impl AsRef<Path>,
    device: &Device,
) -> Result<(IResNet, VarMap)> {
    let varmap = VarMap::new();
    let vb = candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, device);
    let model = IResNet::with_kernels(config, kernels, vb)?;
    load_weights(&varmap, path)?;
    Ok((model, varmap))
}
