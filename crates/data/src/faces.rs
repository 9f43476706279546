//! The face detector behind `Align::Mtcnn` preprocessing: loaded once per process (the MTCNN
//! weights are a few MB and every decode thread shares them) by whoever knows where the
//! weights are (training and evaluation: `<data dir>/mtcnn`), then used by
//! [`crate::Preprocess::load`] from any thread.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use arcface_face::{FaceFinder, Mtcnn};

use crate::error::{DataError, Result};

static FINDER: OnceLock<Arc<FaceFinder>> = OnceLock::new();

/// Loads the MTCNN weights from `dir` (`pnet.pt`, `rnet.pt`, `onet.pt`) unless a detector is
/// already loaded; returns the detector in use.
pub fn load_detector(dir: &Path) -> Result<Arc<FaceFinder>> {
    if let Some(f) = FINDER.get() {
        return Ok(f.clone());
    }
    // The detector's own error names the file and, for a missing one, how to fetch it.
    let mtcnn = Mtcnn::load(dir, &candle::Device::Cpu)
        .map_err(|e| DataError::Config(format!("MTCNN weights for aligned faces: {e}")))?;
    Ok(FINDER.get_or_init(|| Arc::new(FaceFinder::new(mtcnn))).clone())
}

/// The detector loaded by [`load_detector`], if any.
pub fn detector() -> Option<Arc<FaceFinder>> {
    FINDER.get().cloned()
}
