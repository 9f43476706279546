//! Training checkpoints: weights (backbone + head) and optimizer state as safetensors, plus a
//! JSON meta file, written atomically and rotated.
//!
//! Each checkpoint is `checkpoints/step-NNNNNNNN.safetensors` and `step-NNNNNNNN.json`. Both are
//! written to a temporary file in the same directory, fsynced and renamed, tensors first: the
//! JSON is the commit marker, so a crash (even `kill -9`) mid-write leaves either the previous
//! checkpoint or a complete new one, never a torn one. Keys are `backbone.<InsightFace key>`,
//! `head.<key>` and `optim.<param>.<slot>`.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use candle::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// What a checkpoint records besides its tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Optimizer steps taken so far (the next step has this 0-based index).
    pub step: u64,
    /// Epoch (0-based) in which the next step falls.
    pub epoch: usize,
    /// Batches of `epoch` already consumed (the Loader's `skip_batches` on resume).
    pub batch_in_epoch: usize,
    /// The run's seed; with (epoch, batch_in_epoch) it fixes the data order and augmentation.
    pub seed: u64,
    /// SHA-256 of the resolved model-shaping configuration, to refuse foreign checkpoints.
    pub config_hash: String,
    /// Best validation accuracy so far, if any (to keep `best.safetensors` honest on resume).
    #[serde(default)]
    pub best_val: Option<f64>,
    /// Training wall time before this checkpoint, so that `elapsed_s` continues on resume.
    #[serde(default)]
    pub elapsed_s: f64,
    /// File name of the tensors, relative to the checkpoint directory.
    pub tensors: String,
}

/// Writes, lists, rotates and reads the checkpoints of one run.
#[derive(Debug, Clone)]
pub struct Checkpointer {
    dir: PathBuf,
    keep: usize,
}

impl Checkpointer {
    /// Uses (and creates) `dir`, keeping the `keep` most recent checkpoints (at least 1).
    pub fn new(dir: impl Into<PathBuf>, keep: usize) -> Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
        Ok(Self {
            dir,
            keep: keep.max(1),
        })
    }

    /// The checkpoint directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Saves `tensors` and `meta` (its `tensors` field is filled in) and prunes old checkpoints.
    pub fn save(&self, meta: &CheckpointMeta, tensors: &[(String, Tensor)]) -> Result<PathBuf> {
        let stem = format!("step-{:08}", meta.step);
        let st_name = format!("{stem}.safetensors");
        let st_path = self.dir.join(&st_name);
        let map: HashMap<String, Tensor> = tensors.iter().cloned().collect();
        save_safetensors_atomic(&st_path, &map)?;
        let meta = CheckpointMeta {
            tensors: st_name,
            ..meta.clone()
        };
        let json = serde_json::to_vec_pretty(&meta).map_err(|e| TrainError::CheckpointFormat {
            path: st_path.clone(),
            msg: e.to_string(),
        })?;
        let json_path = self.dir.join(format!("{stem}.json"));
        write_atomic(&json_path, &json)?;
        fsync_dir(&self.dir);
        self.prune()?;
        Ok(json_path)
    }

    /// All complete checkpoints (those with a readable meta file), oldest first.
    pub fn list(&self) -> Result<Vec<(CheckpointMeta, PathBuf)>> {
        let mut out = Vec::new();
        let entries = fs::read_dir(&self.dir).map_err(|e| TrainError::io(&self.dir, e))?;
        for entry in entries {
            let path = entry.map_err(|e| TrainError::io(&self.dir, e))?.path();
            let is_meta = path.extension().is_some_and(|e| e == "json")
                && path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("step-"));
            // A meta file that does not parse was never committed (or was damaged since): it
            // names no checkpoint, so it is passed over rather than failing every resume.
            if let (true, Ok(meta)) = (is_meta, read_meta(&path)) {
                out.push((meta, path));
            }
        }
        out.sort_by_key(|(m, _)| m.step);
        Ok(out)
    }

    /// The most recent complete checkpoint, if any.
    pub fn latest(&self) -> Result<Option<(CheckpointMeta, PathBuf)>> {
        Ok(self.list()?.pop())
    }

    fn prune(&self) -> Result<()> {
        let all = self.list()?;
        let excess = all.len().saturating_sub(self.keep);
        for (meta, json) in all.into_iter().take(excess) {
            // Meta first: without it the tensors are no longer a checkpoint.
            fs::remove_file(&json).map_err(|e| TrainError::io(&json, e))?;
            let st = self.dir.join(&meta.tensors);
            if st.exists() {
                fs::remove_file(&st).map_err(|e| TrainError::io(&st, e))?;
            }
        }
        // Leftover temporaries of an interrupted save.
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().ends_with(".tmp") {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }
}

/// Reads a checkpoint's meta file.
pub fn read_meta(json_path: &Path) -> Result<CheckpointMeta> {
    let bytes = fs::read(json_path).map_err(|e| TrainError::io(json_path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| TrainError::CheckpointFormat {
        path: json_path.to_path_buf(),
        msg: e.to_string(),
    })
}

/// Loads the tensors of the checkpoint whose meta file is `json_path`.
pub fn load_tensors(
    json_path: &Path,
    meta: &CheckpointMeta,
    device: &Device,
) -> Result<HashMap<String, Tensor>> {
    let dir = json_path.parent().unwrap_or(Path::new("."));
    let st = dir.join(&meta.tensors);
    candle::safetensors::load(&st, device).map_err(|e| TrainError::CheckpointFormat {
        path: st.clone(),
        msg: e.to_string(),
    })
}

/// Copies `prefix.<name>` tensors into `vars`, after checking that every name and shape fits;
/// all mismatches are reported together.
pub fn restore_vars(
    path: &Path,
    prefix: &str,
    vars: &[(String, Var)],
    tensors: &HashMap<String, Tensor>,
) -> Result<()> {
    let mut mismatches = Vec::new();
    let wanted: HashMap<String, &Var> = vars
        .iter()
        .map(|(n, v)| (format!("{prefix}.{n}"), v))
        .collect();
    let mut keys: Vec<&String> = wanted.keys().collect();
    keys.sort();
    for key in &keys {
        let var = wanted[*key];
        match tensors.get(*key) {
            None => mismatches.push(format!("missing `{key}` (model expects {:?})", var.dims())),
            Some(t) if t.dims() != var.dims() => mismatches.push(format!(
                "`{key}`: checkpoint has {:?}, model expects {:?}",
                t.dims(),
                var.dims()
            )),
            Some(_) => {}
        }
    }
    let mut extra: Vec<&String> = tensors
        .keys()
        .filter(|k| k.starts_with(&format!("{prefix}.")) && !wanted.contains_key(*k))
        .collect();
    extra.sort();
    mismatches.extend(
        extra
            .into_iter()
            .map(|k| format!("unexpected `{k}` (not in the model)")),
    );
    if !mismatches.is_empty() {
        return Err(TrainError::CheckpointMismatch {
            path: path.to_path_buf(),
            mismatches,
        });
    }
    for key in keys {
        let var = wanted[key];
        let t = tensors[key]
            .to_device(var.device())?
            .to_dtype(var.dtype())?;
        var.set(&t)?;
    }
    Ok(())
}

/// Writes `bytes` to `path` via a fsynced temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(arcface_eval::run_dir::write_atomic(path, bytes)?)
}

/// Saves named tensors to a safetensors file atomically.
pub fn save_safetensors_atomic(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<()> {
    Ok(arcface_eval::run_dir::replace_atomic(path, |tmp| {
        candle::safetensors::save(tensors, tmp).map_err(std::io::Error::other)
    })?)
}

fn fsync_dir(dir: &Path) {
    // Makes the renames durable; not supported everywhere, and harmless to skip.
    if let Ok(f) = fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::DType;

    fn meta(step: u64) -> CheckpointMeta {
        CheckpointMeta {
            step,
            epoch: 0,
            batch_in_epoch: step as usize,
            seed: 7,
            config_hash: "h".into(),
            best_val: None,
            elapsed_s: 0.0,
            tensors: String::new(),
        }
    }

    #[test]
    fn save_list_prune_and_restore() {
        let dir = tempfile::tempdir().unwrap();
        let ck = Checkpointer::new(dir.path().join("checkpoints"), 2).unwrap();
        let w = Var::from_slice(&[1f32, 2.0, 3.0], 3, &Device::Cpu).unwrap();
        for step in [10, 20, 30] {
            let t = (w.as_tensor() * step as f64).unwrap();
            ck.save(&meta(step), &[("backbone.w".into(), t)]).unwrap();
        }
        let steps: Vec<u64> = ck.list().unwrap().iter().map(|(m, _)| m.step).collect();
        assert_eq!(steps, vec![20, 30]);
        let files = fs::read_dir(ck.dir()).unwrap().count();
        assert_eq!(files, 4, "two pairs of files, no temporaries");
        let (m, p) = ck.latest().unwrap().unwrap();
        let ts = load_tensors(&p, &m, &Device::Cpu).unwrap();
        restore_vars(&p, "backbone", &[("w".into(), w.clone())], &ts).unwrap();
        assert_eq!(
            w.as_tensor().to_vec1::<f32>().unwrap(),
            vec![30.0, 60.0, 90.0]
        );
    }

    #[test]
    fn mismatch_lists_every_problem() {
        let dir = tempfile::tempdir().unwrap();
        let ck = Checkpointer::new(dir.path(), 1).unwrap();
        let z = |n: usize| Tensor::zeros(n, DType::F32, &Device::Cpu).unwrap();
        ck.save(
            &meta(1),
            &[("backbone.a".into(), z(4)), ("backbone.extra".into(), z(1))],
        )
        .unwrap();
        let (m, p) = ck.latest().unwrap().unwrap();
        let ts = load_tensors(&p, &m, &Device::Cpu).unwrap();
        let a = Var::zeros(3, DType::F32, &Device::Cpu).unwrap();
        let b = Var::zeros(2, DType::F32, &Device::Cpu).unwrap();
        let err =
            restore_vars(&p, "backbone", &[("a".into(), a), ("b".into(), b)], &ts).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("`backbone.a`: checkpoint has [4], model expects [3]"),
            "{msg}"
        );
        assert!(msg.contains("missing `backbone.b`"), "{msg}");
        assert!(msg.contains("unexpected `backbone.extra`"), "{msg}");
    }

    #[test]
    fn incomplete_checkpoint_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let ck = Checkpointer::new(dir.path(), 3).unwrap();
        let z = Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap();
        ck.save(&meta(5), &[("backbone.a".into(), z.clone())])
            .unwrap();
        // A crash after the tensors but before the meta leaves only the safetensors file.
        candle::safetensors::save(
            &HashMap::from([("backbone.a".to_string(), z)]),
            dir.path().join("step-00000009.safetensors"),
        )
        .unwrap();
        assert_eq!(ck.latest().unwrap().unwrap().0.step, 5);
    }
}
