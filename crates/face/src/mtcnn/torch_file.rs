//! Reading PyTorch state dicts: the zip format of `torch.save` since PyTorch 1.6 (through
//! candle), and the older "legacy" format in which facenet-pytorch's MTCNN weights are
//! published. A legacy file is five pickles and raw storages in a row: a magic number, the
//! protocol version, system info, the state dict (whose tensors point at storages by key),
//! the list of storage keys in file order, then each storage as an 8-byte little-endian
//! element count followed by its elements.

use std::io::{BufRead, Cursor, Read};
use std::path::Path;

use candle::pickle::{Object, Stack};
use candle::{Device, Tensor};

/// The magic number pickle that opens a legacy file: PROTO 2, LONG1 of 10 bytes
/// (0x1950a86a20f9469cfc6c), STOP.
const LEGACY_MAGIC: [u8; 15] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
];

/// The named f32 tensors of a state dict file (zip or legacy format).
pub fn read_state_dict(path: &Path) -> Result<Vec<(String, Tensor)>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if bytes.starts_with(b"PK") {
        return candle::pickle::read_all(path).map_err(|e| e.to_string());
    }
    if !bytes.starts_with(&LEGACY_MAGIC) {
        return Err("not a PyTorch file (neither the zip nor the legacy torch.save format)".into());
    }
    read_legacy(&bytes[LEGACY_MAGIC.len()..])
}

/// One tensor of the state dict before its storage is read.
struct TensorRef {
    name: String,
    storage_key: String,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

impl TensorRef {
    /// The tensor's values in row-major order, gathered from its storage through the strides
    /// (some of facenet-pytorch's weights are stored transposed).
    fn gather(&self, storage: &[f32]) -> Result<Vec<f32>, String> {
        let past = || format!("{}: reads past its storage of {} values", self.name, storage.len());
        // Checked: a damaged file may announce any shape; the values read must fit the storage
        // (which bounds every index below) and be no more than it holds (no broadcasting in a
        // state dict, so no allocation beyond the file's own size).
        let n = self.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or_else(past)?;
        if n == 0 {
            return Ok(Vec::new());
        }
        if n > storage.len() {
            return Err(past());
        }
        let last = self.shape.iter().zip(&self.stride).try_fold(self.offset, |acc, (d, s)| {
            (d - 1).checked_mul(*s).and_then(|x| acc.checked_add(x))
        });
        if last.is_none_or(|last| last >= storage.len()) {
            return Err(past());
        }
        let mut out = Vec::with_capacity(n);
        let mut index = vec![0usize; self.shape.len()];
        for _ in 0..n {
            let at = self.offset + index.iter().zip(&self.stride).map(|(i, s)| i * s).sum::<usize>();
            out.push(storage[at]);
            for d in (0..index.len()).rev() {
                index[d] += 1;
                if index[d] < self.shape[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        Ok(out)
    }
}

fn read_legacy(bytes: &[u8]) -> Result<Vec<(String, Tensor)>, String> {
    let mut r = Cursor::new(bytes);
    let _protocol_version = unpickle(&mut r)?;
    let _sys_info = unpickle(&mut r)?;
    let state = unpickle(&mut r)?;
    let keys = match unpickle(&mut r)? {
        Object::List(keys) => keys.into_iter().map(string).collect::<Result<Vec<_>, _>>()?,
        other => return Err(format!("expected the list of storage keys, found {other:?}")),
    };
    let Object::Dict(items) = state else {
        return Err("the main pickle is not a state dict".into());
    };
    let refs: Vec<TensorRef> = items.into_iter().filter_map(|(k, v)| tensor_ref(k, v).transpose()).collect::<Result<_, _>>()?;
    let mut storages = std::collections::HashMap::new();
    for key in keys {
        let mut count = [0u8; 8];
        r.read_exact(&mut count).map_err(|_| format!("storage {key}: file ends before its size"))?;
        let count = u64::from_le_bytes(count) as usize;
        let left = bytes.len() - r.position() as usize;
        if count.checked_mul(4).is_none_or(|n| n > left) {
            return Err(format!("storage {key}: {count} values announced, {left} bytes left in the file"));
        }
        let mut data = vec![0u8; count * 4];
        r.read_exact(&mut data).map_err(|e| e.to_string())?;
        let values: Vec<f32> = data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        storages.insert(key, values);
    }
    refs.into_iter()
        .map(|t| {
            let storage = storages.get(&t.storage_key).ok_or_else(|| format!("{}: storage {} missing", t.name, t.storage_key))?;
            let values = t.gather(storage)?;
            let tensor = Tensor::from_vec(values, t.shape.as_slice(), &Device::Cpu).map_err(|e| e.to_string())?;
            Ok((t.name, tensor))
        })
        .collect()
}

/// Runs one pickle. candle's unpickler panics on some malformed inputs (an over-long LONG1
/// overflows a shift), so a panic is turned into the error a damaged file deserves.
fn unpickle(r: &mut Cursor<&[u8]>) -> Result<Object, String> {
    if r.fill_buf().map_err(|e| e.to_string())?.is_empty() {
        return Err("file ends early".into());
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut stack = Stack::empty();
        stack.read_loop(r)?;
        stack.finalize()
    }));
    match result {
        Ok(Ok(obj)) => Ok(obj),
        Ok(Err(e)) => Err(format!("damaged pickle: {e}")),
        Err(_) => Err("damaged pickle".into()),
    }
}

fn string(o: Object) -> Result<String, String> {
    match o {
        Object::Unicode(s) => Ok(s),
        other => Err(format!("expected a string, found {other:?}")),
    }
}

fn int(o: Object) -> Result<usize, String> {
    o.int_or_long()
        .ok()
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| "expected a non-negative integer".to_string())
}

/// `name -> _rebuild_tensor_v2((storage, ...), offset, shape, stride, ...)` of a float
/// tensor; `None` for entries that are not tensors (`_metadata`).
fn tensor_ref(key: Object, value: Object) -> Result<Option<TensorRef>, String> {
    let Ok(name) = string(key) else { return Ok(None) };
    let Object::Reduce { callable, args } = value else { return Ok(None) };
    match *callable {
        Object::Class { module_name, class_name } if module_name == "torch._utils" && class_name == "_rebuild_tensor_v2" => {}
        _ => return Ok(None),
    }
    let bad = |why: &str| format!("{name}: {why}");
    let Object::Tuple(args) = *args else { return Err(bad("malformed tensor")) };
    let mut args = args.into_iter();
    let (Some(storage), Some(offset), Some(shape), Some(stride)) = (args.next(), args.next(), args.next(), args.next()) else {
        return Err(bad("malformed tensor"));
    };
    let Object::PersistentLoad(id) = storage else { return Err(bad("no storage")) };
    let Object::Tuple(id) = *id else { return Err(bad("malformed storage id")) };
    let mut id = id.into_iter();
    let (_, Some(Object::Class { class_name, .. }), Some(key)) = (id.next(), id.next(), id.next()) else {
        return Err(bad("malformed storage id"));
    };
    if class_name != "FloatStorage" {
        return Err(bad(&format!("{class_name} tensors are not supported (float32 only)")));
    }
    let dims = |o: Object| match o {
        Object::Tuple(v) => v.into_iter().map(int).collect::<Result<Vec<_>, _>>(),
        _ => Err("expected a tuple".to_string()),
    };
    let shape = dims(shape).map_err(|e| bad(&e))?;
    let stride = dims(stride).map_err(|e| bad(&e))?;
    if stride.len() != shape.len() {
        return Err(bad("shape and stride differ in length"));
    }
    let storage_key = string(key).map_err(|e| bad(&e))?;
    let offset = int(offset).map_err(|e| bad(&e))?;
    Ok(Some(TensorRef { name, storage_key, offset, shape, stride }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_tensors_are_gathered_in_row_major_order() {
        // A 2x3 tensor stored transposed: storage [a d b e c f], strides (1, 2).
        let t = TensorRef { name: "w".into(), storage_key: "0".into(), offset: 0, shape: vec![2, 3], stride: vec![1, 2] };
        assert_eq!(t.gather(&[1., 4., 2., 5., 3., 6.]).unwrap(), vec![1., 2., 3., 4., 5., 6.]);
        let t = TensorRef { offset: 1, ..t };
        assert!(t.gather(&[1., 4., 2., 5., 3., 6.]).unwrap_err().contains("past its storage"));
    }

    #[test]
    fn files_that_are_not_pytorch_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.pt");
        std::fs::write(&p, b"hello").unwrap();
        assert!(read_state_dict(&p).unwrap_err().contains("not a PyTorch file"));
        let mut cut = LEGACY_MAGIC.to_vec();
        cut.extend_from_slice(&[0x80, 0x02, 0x4d]);
        std::fs::write(&p, &cut).unwrap();
        assert!(read_state_dict(&p).is_err());
    }
}
