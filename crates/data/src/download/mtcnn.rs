//! The MTCNN weights: `pnet.pt`, `rnet.pt` and `onet.pt`, the three stages of Zhang et al.'s
//! detector ("Joint Face Detection and Alignment using Multi-task Cascaded Convolutional
//! Networks", IEEE SPL 2016) as facenet-pytorch 2.6.0 ships them (PyTorch `state_dict`s, MIT
//! licence; <https://github.com/timesler/facenet-pytorch>, folder `data/`).
//!
//! [`download_mtcnn`] puts them in `<dir>/mtcnn/` through [`super::files`]: each must match its
//! SHA-256 below (the values of `../shared/data/mtcnn/SHA256SUMS`), downloads resume from
//! `.part` files, and a second run that finds the three files verified does nothing. The
//! licence file is copied from a `--from` folder when it holds one. [`mtcnn_weights`] is where
//! they are found afterwards.

use std::path::{Path, PathBuf};

use super::checksum::Checksum;
use super::error::DownloadError;
use super::files::{download_files, Dataset, FilesReport, KnownFile};
use super::sources::DefaultSources;
use super::DownloadOptions;

/// The weights' folder under the data folder.
pub const MTCNN_SUBDIR: &str = "mtcnn";

/// The three files and their SHA-256, in detection order.
pub const MTCNN_FILES: [(&str, &str); 3] = [
    (
        "pnet.pt",
        "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    ),
    (
        "rnet.pt",
        "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    ),
    (
        "onet.pt",
        "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
    ),
];

/// facenet-pytorch's licence, copied beside the weights when `--from` has it.
pub const MTCNN_LICENCE: &str = "LICENSE-facenet-pytorch.md";

/// Where the three MTCNN weight files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtcnnWeights {
    /// P-Net (proposals).
    pub pnet: PathBuf,
    /// R-Net (refinement).
    pub rnet: PathBuf,
    /// O-Net (output boxes and five landmarks).
    pub onet: PathBuf,
}

impl MtcnnWeights {
    /// Whether all three files exist (their digests are checked by the download).
    pub fn exist(&self) -> bool {
        [&self.pnet, &self.rnet, &self.onet]
            .iter()
            .all(|p| p.is_file())
    }
}

/// The default layout: `<data_dir>/mtcnn/{pnet,rnet,onet}.pt`, where `download mtcnn` puts them.
pub fn mtcnn_weights(data_dir: &Path) -> MtcnnWeights {
    let dir = data_dir.join(MTCNN_SUBDIR);
    MtcnnWeights {
        pnet: dir.join("pnet.pt"),
        rnet: dir.join("rnet.pt"),
        onet: dir.join("onet.pt"),
    }
}

impl Dataset {
    /// The MTCNN weights with their known SHA-256 and facenet-pytorch as the default source.
    pub fn mtcnn() -> Self {
        Dataset {
            name: "MTCNN weights".into(),
            subdir: MTCNN_SUBDIR.into(),
            files: MTCNN_FILES
                .iter()
                .map(|(name, sha)| KnownFile {
                    name: name.to_string(),
                    accepted: vec![Checksum::Sha256(sha.to_string())],
                })
                .collect(),
            archive: None,
            extras: vec![MTCNN_LICENCE.into()],
            defaults: DefaultSources::mtcnn(),
        }
    }
}

/// Downloads and verifies the MTCNN weights into `<opts.dir>/mtcnn/` (see the module docs;
/// `opts.checksums` and `opts.keep_archive` are LFW's and unused here).
pub fn download_mtcnn(opts: &DownloadOptions) -> Result<FilesReport, DownloadError> {
    download_files(opts, &Dataset::mtcnn())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_three_files_under_mtcnn() {
        let w = mtcnn_weights(Path::new("data"));
        assert_eq!(w.pnet, Path::new("data/mtcnn/pnet.pt"));
        assert_eq!(w.rnet, Path::new("data/mtcnn/rnet.pt"));
        assert_eq!(w.onet, Path::new("data/mtcnn/onet.pt"));
        let d = Dataset::mtcnn();
        let names: Vec<&str> = d.names();
        assert_eq!(names, ["pnet.pt", "rnet.pt", "onet.pt"]);
    }

    /// The compiled-in sums equal the shared folder's SHA256SUMS, when it is there.
    #[test]
    fn sums_match_the_shared_sha256sums() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mtcnn/SHA256SUMS");
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!("skipping: no {}", path.display());
            return;
        };
        for (name, sha) in MTCNN_FILES {
            assert!(
                text.lines().any(|l| l.split_whitespace().eq([sha, name])),
                "{name}"
            );
        }
    }
}
