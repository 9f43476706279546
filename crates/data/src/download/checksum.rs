//! Checksums: the known-good MD5 and SHA-256 values of the LFW files, and streaming hashing.
//!
//! The MD5s are the ones published with the official files on the LFW site and recorded by
//! torchvision (`torchvision/datasets/lfw.py`); the SHA-256s of `pairs.txt`,
//! `pairsDevTrain.txt` and `pairsDevTest.txt` are the ones scikit-learn pins for its figshare
//! copies (`sklearn/datasets/_lfw.py`). Both agree with the verified copy in
//! `../shared/data/lfw` (its `SHA256SUMS`), whose repacked archive's SHA-256 is listed too.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use md5::Md5;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::DownloadError;

/// The image archive's file name, as the LFW site serves it.
pub const ARCHIVE_NAME: &str = "lfw-deepfunneled.tgz";
/// The top folder inside the archive.
pub const IMAGES_DIR: &str = "lfw-deepfunneled";
/// The seven protocol files, in the order they are fetched.
pub const PROTOCOL_FILES: [&str; 7] = [
    "pairs.txt",
    "people.txt",
    "pairsDevTrain.txt",
    "pairsDevTest.txt",
    "peopleDevTrain.txt",
    "peopleDevTest.txt",
    "lfw-names.txt",
];

/// One accepted digest of a file (lower-case hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "algorithm", content = "hex")]
pub enum Checksum {
    /// MD5, as the LFW site publishes.
    Md5(String),
    /// SHA-256.
    Sha256(String),
}

impl Checksum {
    /// Whether `d` has this digest (case-insensitive).
    pub fn matches(&self, d: &Digests) -> bool {
        match self {
            Checksum::Md5(h) => h.eq_ignore_ascii_case(&d.md5),
            Checksum::Sha256(h) => h.eq_ignore_ascii_case(&d.sha256),
        }
    }
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Checksum::Md5(h) => write!(f, "md5:{h}"),
            Checksum::Sha256(h) => write!(f, "sha256:{h}"),
        }
    }
}

/// The accepted digests of the archive and of each protocol file; any one match is enough.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownChecksums {
    /// Accepted digests of `lfw-deepfunneled.tgz`. An archive matching none of them is still
    /// used when its contents match `lfw-names.txt` (see the module docs).
    pub archive: Vec<Checksum>,
    /// Accepted digests of each protocol file, by file name. A mismatch is an error.
    pub files: BTreeMap<String, Vec<Checksum>>,
}

impl Default for KnownChecksums {
    /// The real LFW values.
    fn default() -> Self {
        let md5 = |s: &str| Checksum::Md5(s.to_string());
        let sha = |s: &str| Checksum::Sha256(s.to_string());
        let files = [
            (
                "pairs.txt",
                "9f1ba174e4e1c508ff7cdf10ac338a7d",
                "ea42330c62c92989f9d7c03237ed5d591365e89b3e649747777b70e692dc1592",
            ),
            (
                "people.txt",
                "450f0863dd89e85e73936a6d71a3474b",
                "bc8fa2b7f25c895cf7efb6de4f4fc27ca8b8d1cfa63350ad8b96eae2b198d365",
            ),
            (
                "pairsDevTrain.txt",
                "4f27cbf15b2da4a85c1907eb4181ad21",
                "1d454dada7dfeca0e7eab6f65dc4e97a6312d44cf142207be28d688be92aabfa",
            ),
            (
                "pairsDevTest.txt",
                "5132f7440eb68cf58910c8a45a2ac10b",
                "7cb06600ea8b2814ac26e946201cdb304296262aad67d046a16a7ec85d0ff87c",
            ),
            (
                "peopleDevTrain.txt",
                "54eaac34beb6d042ed3a7d883e247a21",
                "2e58df13ba4cc143189336e001cc2c195f1dfa5b29a6475c02857be353c2a2fa",
            ),
            (
                "peopleDevTest.txt",
                "e4bf5be0a43b5dcd9dc5ccfcb8fb19c5",
                "c3ed1f90499473401542101a56c14c1d82396bb8218c67a356d7460601047555",
            ),
            (
                "lfw-names.txt",
                "a6d0a479bd074669f656265a6e693f6d",
                "403cd39411ee297f99f69241959bd8f0496b44377711913a76ccdd8562874164",
            ),
        ];
        KnownChecksums {
            archive: vec![
                // The official archive (LFW site, torchvision).
                md5("68331da3eb755a505a502b5aacb3c201"),
                // The deterministic repack in ../shared/data/lfw (its SHA256SUMS).
                sha("7b8227d71509562e95fc798b8e5de9903403ce4354cfda24feb1ba6c54fb1362"),
            ],
            files: files
                .iter()
                .map(|(name, m, s)| (name.to_string(), vec![md5(m), sha(s)]))
                .collect(),
        }
    }
}

impl KnownChecksums {
    /// The accepted digests for a protocol file (empty when unknown).
    pub fn for_file(&self, name: &str) -> &[Checksum] {
        self.files.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// The MD5 and SHA-256 of some bytes, lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digests {
    /// MD5.
    pub md5: String,
    /// SHA-256.
    pub sha256: String,
}

impl Digests {
    /// The first accepted checksum that matches, if any.
    pub fn find_match<'a>(&self, accepted: &'a [Checksum]) -> Option<&'a Checksum> {
        accepted.iter().find(|c| c.matches(self))
    }

    /// Checks `self` against `accepted`, naming `what` in the error.
    pub fn verify(&self, accepted: &[Checksum], what: &str) -> Result<(), DownloadError> {
        if accepted.is_empty() || self.find_match(accepted).is_some() {
            return Ok(());
        }
        Err(DownloadError::ChecksumMismatch {
            what: what.to_string(),
            expected: accepted
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(" or "),
            got: format!("md5:{} sha256:{}", self.md5, self.sha256),
        })
    }
}

/// Both hashes, fed incrementally.
#[derive(Default, Clone)]
pub struct Hasher {
    md5: Md5,
    sha256: Sha256,
}

impl Hasher {
    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.md5.update(bytes);
        self.sha256.update(bytes);
    }

    /// The final digests.
    pub fn finish(self) -> Digests {
        Digests {
            md5: hex::encode(self.md5.finalize()),
            sha256: hex::encode(self.sha256.finalize()),
        }
    }
}

/// Hashes a whole file.
pub fn digest_file(path: &Path) -> Result<Digests, DownloadError> {
    let mut file = std::fs::File::open(path).map_err(|e| DownloadError::io("opening", path, e))?;
    let mut hasher = Hasher::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| DownloadError::io("reading", path, e))?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 1321 and FIPS 180-2 test vectors for "abc".
    #[test]
    fn hasher_matches_reference_vectors() {
        let mut h = Hasher::default();
        h.update(b"a");
        h.update(b"bc");
        let d = h.finish();
        assert_eq!(d.md5, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            d.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn verify_accepts_any_listed_value_and_reports_mismatch() {
        let d = Digests {
            md5: "aa".into(),
            sha256: "bb".into(),
        };
        d.verify(
            &[Checksum::Md5("zz".into()), Checksum::Sha256("BB".into())],
            "f",
        )
        .unwrap();
        let e = d
            .verify(&[Checksum::Md5("zz".into())], "f.txt")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("expected md5:zz") && e.contains("got md5:aa sha256:bb"),
            "{e}"
        );
    }

    #[test]
    fn defaults_cover_every_protocol_file() {
        let k = KnownChecksums::default();
        for name in PROTOCOL_FILES {
            assert_eq!(k.for_file(name).len(), 2, "{name}");
        }
        assert_eq!(k.files.len(), PROTOCOL_FILES.len());
    }
}
