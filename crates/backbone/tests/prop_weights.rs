//! Property tests: no weight file makes the reader panic or allocate without bound. Arbitrary
//! bytes under each extension; PyTorch zips rebuilt around a damaged `data.pkl` (with valid
//! CRCs, so the pickle parser itself is reached); safetensors files whose JSON header lists
//! tensors of any dtype, shape and offsets. Each reads or fails naming the file.

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use arcface_backbone::read_tensors;
use proptest::prelude::*;

fn fixture_pth() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny/weights.pth")).unwrap()
}

/// The fixture's zip with `edit` applied to its `data.pkl`, entries stored as PyTorch does.
fn rezip(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut src = zip::ZipArchive::new(Cursor::new(fixture_pth())).unwrap();
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut edit = Some(edit);
    for i in 0..src.len() {
        let mut entry = src.by_index(i).unwrap();
        let name = entry.name().unwrap().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if name.ends_with("data.pkl") {
            (edit.take().unwrap())(&mut data);
        }
        out.start_file(name, opts).unwrap();
        out.write_all(&data).unwrap();
    }
    out.finish().unwrap().into_inner()
}

fn check(bytes: &[u8], name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    if let Err(e) = read_tensors(&path) {
        assert!(e.to_string().contains(name), "{e}");
    }
}

fn mutate(data: &mut Vec<u8>, flips: &[(prop::sample::Index, u8)], cut: Option<prop::sample::Index>) {
    for (at, v) in flips {
        if !data.is_empty() {
            let i = at.index(data.len());
            data[i] = *v;
        }
    }
    if let Some(cut) = cut {
        data.truncate(cut.index(data.len() + 1));
    }
}

fn safetensors_file() -> impl Strategy<Value = Vec<u8>> {
    let dtype = prop::sample::select(vec!["F32", "F16", "BF16", "F64", "I64", "U8", "BOOL", "F8_E4M3", "Q4", ""]);
    let dim = prop_oneof![0usize..5, Just(usize::MAX), Just(1usize << 62), any::<usize>()];
    let tensor = (
        "[a-z.]{1,12}",
        dtype,
        prop::collection::vec(dim, 0..4),
        (0usize..64, 0usize..64),
    );
    (prop::collection::vec(tensor, 0..4), prop::collection::vec(any::<u8>(), 0..64), any::<bool>()).prop_map(
        |(tensors, data, lie_about_len)| {
            let entries: Vec<String> = tensors
                .iter()
                .map(|(name, dtype, shape, (a, b))| {
                    format!(r#""{name}":{{"dtype":"{dtype}","shape":{shape:?},"data_offsets":[{a},{b}]}}"#)
                })
                .collect();
            let header = format!("{{{}}}", entries.join(","));
            let len = if lie_about_len { u64::MAX - 3 } else { header.len() as u64 };
            let mut bytes = len.to_le_bytes().to_vec();
            bytes.extend_from_slice(header.as_bytes());
            bytes.extend_from_slice(&data);
            bytes
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256), ext in 0..2usize) {
        check(&bytes, ["hostile.pth", "hostile.safetensors"][ext]);
    }

    #[test]
    fn a_damaged_zip_never_panics(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = fixture_pth();
        mutate(&mut bytes, &flips, cut);
        check(&bytes, "hostile.pth");
    }

    #[test]
    fn any_safetensors_header_never_panics(bytes in safetensors_file()) {
        check(&bytes, "hostile.safetensors");
    }
}

proptest! {
    // Each case rebuilds and reads a 160-tensor zip: fewer cases keep it under two seconds.
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_damaged_pickle_in_a_sound_zip_never_panics(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        check(&rezip(|pkl| mutate(pkl, &flips, cut)), "hostile.pth");
    }
}

/// Found by fuzz/pth_pickle, each a panic inside candle's pickle reader: a `_rebuild_tensor_v2`
/// call with too few arguments ("removal index (is 3) should be < len (is 1)"), and a LONG1
/// integer of more than 8 bytes ("attempt to shift left with overflow").
#[test]
fn pickles_that_crashed_candle_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["pth_pickle_short_args", "pth_pickle_long1_shift"] {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/fuzz/{name}.pkl"));
        let pkl = std::fs::read(fixture).unwrap();
        let path = dir.path().join(format!("{name}.pth"));
        std::fs::write(&path, rezip(|data| *data = pkl)).unwrap();
        let e = read_tensors(&path).unwrap_err().to_string();
        assert!(e.contains(&format!("{name}.pth")) && e.contains("malformed pickle"), "{e}");
    }
}
