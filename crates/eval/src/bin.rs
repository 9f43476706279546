//! InsightFace verification sets (`lfw.bin`, `cfp_fp.bin`, `agedb_30.bin`, ...): a Python
//! pickle of `(list of encoded images, list of bool issame)`, two images per pair, written by
//! `pickle.dump((bins, issame_list), f, protocol=pickle.HIGHEST_PROTOCOL)` and read by
//! InsightFace's `eval/verification.py` with `pickle.load(f, encoding='bytes')`.
//!
//! Supported: images as Python 3 `bytes`, Python 2 `str` (how the published files were
//! written) or `bytearray`; issame as bools or 0/1 ints. Not supported: images stored as numpy
//! uint8 arrays (a pickled numpy reconstruct call), which fails with a clear error.

use std::path::Path;

use serde_pickle::{DeOptions, Value};

use crate::error::{Error, Result};

/// A verification set read from a `.bin` file.
#[derive(Debug, Clone, PartialEq)]
pub struct BinSet {
    /// Encoded images (JPEG/PNG bytes); pair `i` is images `2i` and `2i + 1`.
    pub images: Vec<Vec<u8>>,
    /// Whether pair `i` shows the same person.
    pub issame: Vec<bool>,
}

impl BinSet {
    /// Number of pairs.
    pub fn num_pairs(&self) -> usize {
        self.issame.len()
    }

    /// The width and height every image has, read from their headers (`path` names the file in
    /// errors). A set holds one size: the crop is the whole image, so a face of another size
    /// would be cropped with the first one's box and scored at another scale without a word.
    pub fn image_size(&self, path: &Path) -> Result<(u32, u32)> {
        let mut first = None;
        for (i, bytes) in self.images.iter().enumerate() {
            let (w, h) = image::ImageReader::new(std::io::Cursor::new(bytes))
                .with_guessed_format()
                .and_then(|r| r.into_dimensions().map_err(std::io::Error::other))
                .map_err(|e| Error::format(path, format!("image {i} does not decode: {e}")))?;
            match first {
                None => first = Some((w, h)),
                Some((w0, h0)) if (w, h) != (w0, h0) => {
                    return Err(Error::format(
                        path,
                        format!("image {i} is {w}x{h} but image 0 is {w0}x{h0}; a verification set holds one size"),
                    ))
                }
                Some(_) => {}
            }
        }
        first.ok_or_else(|| Error::format(path, "no images"))
    }
}

fn as_list(v: Value) -> Option<Vec<Value>> {
    match v {
        Value::List(l) | Value::Tuple(l) => Some(l),
        _ => None,
    }
}

/// Reads a verification `.bin` file.
pub fn read_bin(path: &Path) -> Result<BinSet> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_bin(&bytes, path)
}

/// Parses the bytes of a verification `.bin`; `path` is only used in error messages.
pub fn parse_bin(bytes: &[u8], path: &Path) -> Result<BinSet> {
    let bad = |m: String| Error::format(path, m);
    // Globals (numpy) are replaced by None instead of failing, so the error below can say
    // what the file holds.
    let value =
        serde_pickle::value_from_slice(bytes, DeOptions::new().replace_unresolved_globals())
            .map_err(|e| {
                bad(format!(
                    "not a readable pickle (corrupt or truncated?): {e}"
                ))
            })?;
    let top =
        as_list(value).ok_or_else(|| bad("expected a pickled (images, issame) tuple".into()))?;
    let [images, issame]: [Value; 2] = top.try_into().map_err(|t: Vec<Value>| {
        bad(format!(
            "expected a 2-tuple (images, issame), got {} items",
            t.len()
        ))
    })?;
    let images =
        as_list(images).ok_or_else(|| bad("first element (images) is not a list".into()))?;
    let issame =
        as_list(issame).ok_or_else(|| bad("second element (issame) is not a list".into()))?;
    let images = images
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Bytes(b) => Ok(b),
            Value::None => Err(bad(format!(
                "image {i} is not bytes (numpy arrays are not supported; re-save as bytes)"
            ))),
            other => Err(bad(format!("image {i} is not bytes: {}", kind(&other)))),
        })
        .collect::<Result<Vec<_>>>()?;
    let issame = issame
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Bool(b) => Ok(b),
            Value::I64(0) => Ok(false),
            Value::I64(1) => Ok(true),
            other => Err(bad(format!("issame {i} is not a bool: {}", kind(&other)))),
        })
        .collect::<Result<Vec<_>>>()?;
    if images.len() != 2 * issame.len() {
        return Err(bad(format!(
            "{} images for {} pairs (expected two images per pair)",
            images.len(),
            issame.len()
        )));
    }
    if issame.is_empty() {
        return Err(bad("no pairs".into()));
    }
    Ok(BinSet { images, issame })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::None => "None",
        Value::Bool(_) => "bool",
        Value::I64(_) | Value::Int(_) => "int",
        Value::F64(_) => "float",
        Value::Bytes(_) => "bytes",
        Value::String(_) => "str",
        Value::List(_) => "list",
        Value::Tuple(_) => "tuple",
        Value::Set(_) | Value::FrozenSet(_) => "set",
        Value::Dict(_) => "dict",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pickle(v: &Value) -> Vec<u8> {
        serde_pickle::value_to_vec(v, serde_pickle::SerOptions::new()).unwrap()
    }

    #[test]
    fn reads_bytes_and_int_labels() {
        let v = Value::Tuple(vec![
            Value::List(vec![Value::Bytes(vec![1, 2]), Value::Bytes(vec![3])]),
            Value::List(vec![Value::I64(1)]),
        ]);
        let set = parse_bin(&pickle(&v), Path::new("x.bin")).unwrap();
        assert_eq!(set.images, vec![vec![1, 2], vec![3]]);
        assert_eq!(set.issame, vec![true]);
    }

    #[test]
    fn wrong_structure_is_an_error() {
        let odd = Value::Tuple(vec![
            Value::List(vec![Value::Bytes(vec![1])]),
            Value::List(vec![Value::Bool(true)]),
        ]);
        let e = parse_bin(&pickle(&odd), Path::new("x.bin")).unwrap_err();
        assert!(e.to_string().contains("1 images for 1 pairs"), "{e}");
        let strs = Value::Tuple(vec![
            Value::List(vec![Value::String("a".into()), Value::String("b".into())]),
            Value::List(vec![Value::Bool(true)]),
        ]);
        let e = parse_bin(&pickle(&strs), Path::new("x.bin")).unwrap_err();
        assert!(e.to_string().contains("image 0 is not bytes: str"), "{e}");
        let e = parse_bin(b"not a pickle", Path::new("x.bin")).unwrap_err();
        assert!(
            e.to_string().starts_with("x.bin: not a readable pickle"),
            "{e}"
        );
    }
}
