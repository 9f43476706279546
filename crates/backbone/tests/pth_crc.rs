//! A PyTorch `.pth` is a zip whose entries carry CRC-32s; candle reads each tensor's exact byte
//! count and never reaches the end of the entry where the zip reader compares them, so a
//! flipped bit in the weights loaded silently as a slightly different model. The load must
//! check every entry first and name the file and the damaged entry.

use std::path::{Path, PathBuf};

use arcface_backbone::{load_model, read_tensors, Config, Error};
use candle::Device;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny")
}

/// Offset of the first stored byte of `entry` (from its local file header, which precedes the
/// central directory's copy of the name).
fn data_offset(zip: &[u8], entry: &str) -> usize {
    let name = zip.windows(entry.len()).position(|w| w == entry.as_bytes()).unwrap();
    let header = name - 30;
    assert_eq!(&zip[header..header + 4], b"PK\x03\x04");
    let extra = u16::from_le_bytes([zip[header + 28], zip[header + 29]]) as usize;
    name + entry.len() + extra
}

#[test]
fn a_pth_with_a_bad_crc_is_refused_naming_file_and_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(fixture_dir().join("weights.pth")).unwrap();
    // The low mantissa byte of a weight: still a finite, plausible value, so nothing but the
    // CRC tells the damage.
    let at = data_offset(&bytes, "weights/data/0") + 100 * 4;
    bytes[at] ^= 0x01;
    let path = dir.path().join("damaged.pth");
    std::fs::write(&path, &bytes).unwrap();
    let config: Config =
        serde_json::from_str(&std::fs::read_to_string(fixture_dir().join("config.json")).unwrap()).unwrap();
    let e = load_model(&config, &path, &Device::Cpu).err().expect("a damaged .pth must not load");
    assert!(matches!(e, Error::File { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("damaged.pth") && msg.contains("weights/data/0") && msg.contains("CRC"), "{msg}");
    // The intact file still loads.
    assert!(read_tensors(&fixture_dir().join("weights.pth")).is_ok());
}
