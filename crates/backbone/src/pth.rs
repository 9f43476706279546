//! Reading PyTorch `.pth` files (a zip of `data.pkl` and one stored entry per tensor storage,
//! as `torch.save` writes since PyTorch 1.6) without trusting them: every entry's CRC-32 is
//! checked, candle's pickle reader runs where its panics become errors, and every tensor is
//! bounded by the bytes its storage entry holds before anything is allocated for it.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use candle::pickle::{read_pth_tensor_info, PthTensors};
use candle::Tensor;

use crate::error::{Error, Result};

fn fail(path: &Path, msg: String) -> Error {
    Error::File { path: path.to_path_buf(), source: candle::Error::msg(msg) }
}

/// Runs a call into candle's pickle reader, which indexes the pickle's argument tuples without
/// checking their lengths (found by fuzz/pth_pickle): its panic on a malformed pickle becomes
/// an error naming the file.
fn guarded<T>(path: &Path, what: &str, f: impl FnOnce() -> candle::Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f))
        .map_err(|_| fail(path, format!("{what}: malformed pickle (data.pkl) that candle cannot read")))?
        .map_err(|e| Error::File { path: path.to_path_buf(), source: e })
}

/// Every tensor of the `.pth` at `path`, on the CPU.
pub(crate) fn read_pth(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let sizes = check_entries(path)?;
    let infos = guarded(path, "reading the tensor list", || read_pth_tensor_info(path, false, None))?;
    for info in &infos {
        let bytes = info
            .layout
            .dims()
            .iter()
            .try_fold(info.dtype.size_in_bytes() as u128, |n, &d| n.checked_mul(d as u128))
            .and_then(|n| n.checked_add(info.layout.start_offset() as u128));
        let have = sizes.get(&info.path).copied();
        match (bytes, have) {
            (_, None) => return Err(fail(path, format!("tensor `{}`: no storage entry `{}`", info.name, info.path))),
            (Some(need), Some(have)) if need <= have as u128 => {}
            (need, Some(have)) => {
                let need = need.map_or("more than 2^128".into(), |n| n.to_string());
                return Err(fail(
                    path,
                    format!("tensor `{}` of shape {:?} needs {need} bytes but its storage holds {have}", info.name, info.layout.dims()),
                ));
            }
        }
    }
    let pth = guarded(path, "opening", || PthTensors::new(path, None))?;
    let mut out = Vec::with_capacity(infos.len());
    for info in &infos {
        if let Some(t) = guarded(path, &format!("tensor `{}`", info.name), || pth.get(&info.name))? {
            out.push((info.name.clone(), t));
        }
    }
    Ok(out)
}

/// Reads every zip entry to its end, where the zip reader compares the CRC-32 (candle reads
/// each tensor's exact byte count and stops short of that check, so a damaged weight would
/// load as a plausible, wrong value); returns each entry's size.
fn check_entries(path: &Path) -> Result<HashMap<String, u64>> {
    let file = std::fs::File::open(path).map_err(|e| fail(path, e.to_string()))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| fail(path, format!("not a PyTorch zip archive (torch.save since 1.6): {e}")))?;
    let mut sizes = HashMap::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| fail(path, format!("zip entry {i}: {e}")))?;
        let name = entry.name().map_or_else(|_| format!("#{i}"), |n| n.into_owned());
        let size = std::io::copy(&mut entry, &mut std::io::sink()).map_err(|e| {
            fail(path, format!("zip entry `{name}` is damaged: {e} (its data does not match its CRC-32 or size)"))
        })?;
        sizes.insert(name, size);
    }
    Ok(sizes)
}
