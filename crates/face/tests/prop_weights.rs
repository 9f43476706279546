//! The MTCNN weight reader on damaged files: arbitrary bytes, and the real `pnet.pt` cut short,
//! with bytes flipped or overwritten (when the weights are here). Every input must give a
//! network or an error naming the file, never a panic, a hang or an unbounded allocation.

use std::path::{Path, PathBuf};

use arcface_face::mtcnn::PNet;
use proptest::prelude::*;

fn real_pnet() -> Option<Vec<u8>> {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    [ws.join("data/mtcnn/pnet.pt"), ws.join("../shared/data/mtcnn/pnet.pt")]
        .iter()
        .find_map(|p| std::fs::read(p).ok())
}

fn load(bytes: &[u8], dir: &Path) -> PathBuf {
    let path = dir.join("pnet.pt");
    std::fs::write(&path, bytes).unwrap();
    if let Err(e) = PNet::load(&path, &candle::Device::Cpu) {
        assert!(e.to_string().contains("pnet.pt"), "{e}");
    }
    path
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let dir = tempfile::tempdir().unwrap();
        load(&bytes, dir.path());
    }

    #[test]
    fn a_damaged_real_file_never_panics(cut in 0.0f64..1.0, flips in proptest::collection::vec((0.0f64..1.0, any::<u8>()), 0..8)) {
        let Some(mut bytes) = real_pnet() else { return Ok(()) };
        // Mostly damage the header and the pickles, where the structure is.
        let len = bytes.len();
        for (at, value) in flips {
            let i = ((at * at) * len as f64) as usize;
            bytes[i.min(len - 1)] = value;
        }
        let keep = if cut > 0.5 { bytes.len() } else { (cut * 2.0 * bytes.len() as f64) as usize };
        let dir = tempfile::tempdir().unwrap();
        load(&bytes[..keep], dir.path());
    }
}

#[test]
fn the_real_file_loads() {
    let Some(bytes) = real_pnet() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pnet.pt");
    std::fs::write(&path, bytes).unwrap();
    PNet::load(&path, &candle::Device::Cpu).unwrap();
}
