//! An extracted LFW release (`lfw-deepfunneled/` plus the protocol text files) and its
//! train/test splits: View 1 (`dev`), View 2 (`view2`, fold k) and `pairs` (all 6000 pairs).
//!
//! Protocols as in Huang et al., "Labeled Faces in the Wild", UMass TR 07-49 (2007). Every
//! split checks that training and test identities are disjoint and that every image a
//! protocol file names exists, naming the protocol file and line when one does not.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{DataError, Result};
use crate::protocol::{read_pairs, read_people_folds, read_people_list, ImageRef, PairsFile, Person};
use crate::sets::{PairSet, TrainSet};

/// Folder of the images inside an LFW directory.
pub const IMAGES_DIR: &str = "lfw-deepfunneled";

/// The LFW folder inside a data folder (`<data dir>/lfw`), where `download` extracts it.
pub const LFW_SUBDIR: &str = "lfw";

/// The LFW folder commands use when none is given: `lfw` inside the default data folder.
pub const DEFAULT_LFW_DIR: &str = "data/lfw";

/// Which LFW protocol to split by. Written as `dev`, `view2:<fold>` or `pairs`, in configs,
/// on the command line and in run folders alike (serde uses the same text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Protocol {
    /// View 1: train on `peopleDevTrain.txt`, test on `pairsDevTest.txt`.
    #[default]
    Dev,
    /// View 2 fold `fold` (0-based): train on the other folds of `people.txt`, test on fold
    /// `fold` of `pairs.txt`.
    View2 {
        /// Held-out fold, `0..10`.
        fold: usize,
    },
    /// No training set; all pairs of `pairs.txt` (for pretrained models).
    Pairs,
}

impl Protocol {
    /// The protocol's short name: `dev`, `view2` or `pairs`.
    pub fn name(&self) -> &'static str {
        match self {
            Protocol::Dev => "dev",
            Protocol::View2 { .. } => "view2",
            Protocol::Pairs => "pairs",
        }
    }

    /// The held-out fold for `view2`, `None` otherwise.
    pub fn fold(&self) -> Option<usize> {
        match self {
            Protocol::View2 { fold } => Some(*fold),
            _ => None,
        }
    }

    /// Builds a protocol from its name and (for `view2`) a fold in `0..10`.
    pub fn from_name(name: &str, fold: Option<usize>) -> Result<Protocol> {
        match (name, fold) {
            ("dev", _) => Ok(Protocol::Dev),
            ("pairs", _) => Ok(Protocol::Pairs),
            ("view2", Some(fold)) if fold < VIEW2_FOLDS => Ok(Protocol::View2 { fold }),
            ("view2", Some(fold)) => {
                Err(DataError::Config(format!("view2 fold {fold} is out of range (0..{VIEW2_FOLDS})")))
            }
            ("view2", None) => Err(DataError::Config(
                "protocol view2 needs a held-out fold: write view2:<fold> (fold 0..10), or use `pairs` \
                 for all 6000 pairs of pairs.txt with 10-fold thresholds"
                    .into(),
            )),
            _ => Err(DataError::Config(format!("unknown protocol {name:?} (expected dev, view2 or pairs)"))),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::View2 { fold } => write!(f, "view2:{fold}"),
            other => f.write_str(other.name()),
        }
    }
}

impl FromStr for Protocol {
    type Err = DataError;

    /// Parses `dev`, `pairs` or `view2:<fold>`.
    fn from_str(s: &str) -> Result<Self> {
        match s.split_once(':') {
            Some(("view2", k)) => {
                let fold = k.parse().map_err(|_| DataError::Config(format!("bad view2 fold {k:?}")))?;
                Protocol::from_name("view2", Some(fold))
            }
            _ => Protocol::from_name(s, None),
        }
    }
}

/// Folds of View 2 (`people.txt` and `pairs.txt` are split in ten).
pub const VIEW2_FOLDS: usize = 10;

impl TryFrom<String> for Protocol {
    type Error = DataError;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Protocol> for String {
    fn from(p: Protocol) -> String {
        p.to_string()
    }
}

/// A training set and the pairs to test on.
#[derive(Debug, Clone)]
pub struct Split {
    /// Training images (empty for [`Protocol::Pairs`]).
    pub train: TrainSet,
    /// Test pairs.
    pub test: PairSet,
}

/// An extracted LFW directory.
#[derive(Debug, Clone)]
pub struct Lfw {
    root: PathBuf,
    identities: BTreeMap<String, usize>,
}

impl Lfw {
    /// Opens `dir`, which must hold `lfw-deepfunneled/<Name>/...`; lists the identities.
    pub fn open(dir: impl AsRef<Path>) -> Result<Lfw> {
        let root = dir.as_ref().to_path_buf();
        let images = root.join(IMAGES_DIR);
        if !images.is_dir() {
            return Err(DataError::Layout {
                path: root,
                message: format!("no {IMAGES_DIR}/ folder here (extract lfw-deepfunneled.tgz into this folder)"),
            });
        }
        let mut identities = BTreeMap::new();
        for entry in std::fs::read_dir(&images).map_err(|e| DataError::io(&images, e))? {
            let entry = entry.map_err(|e| DataError::io(&images, e))?;
            if !entry.path().is_dir() {
                continue;
            }
            let count = std::fs::read_dir(entry.path())
                .map_err(|e| DataError::io(entry.path(), e))?
                .filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x.eq_ignore_ascii_case("jpg")))
                .count();
            identities.insert(entry.file_name().to_string_lossy().into_owned(), count);
        }
        if identities.is_empty() {
            return Err(DataError::Layout { path: images, message: "no identity folders".into() });
        }
        Ok(Lfw { root, identities })
    }

    /// The directory passed to [`Lfw::open`].
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Identity names on disk, sorted.
    pub fn identities(&self) -> impl Iterator<Item = &str> {
        self.identities.keys().map(String::as_str)
    }

    /// Number of JPEGs in an identity's folder, `None` for an unknown name.
    pub fn image_count(&self, name: &str) -> Option<usize> {
        self.identities.get(name).copied()
    }

    /// Total number of JPEGs found.
    pub fn num_images(&self) -> usize {
        self.identities.values().sum()
    }

    /// Path of a protocol file (`pairs.txt`, ...) in this directory.
    pub fn protocol_file(&self, file: &str) -> PathBuf {
        self.root.join(file)
    }

    /// Path of an image: `<root>/lfw-deepfunneled/<name>/<name>_<index:04>.jpg`.
    pub fn image_path(&self, image: &ImageRef) -> PathBuf {
        self.root.join(IMAGES_DIR).join(&image.name).join(image.file_name())
    }

    /// Training set and test pairs for `protocol` (see [`Protocol`]).
    pub fn split(&self, protocol: &Protocol) -> Result<Split> {
        match *protocol {
            Protocol::Dev => {
                let people_file = self.protocol_file("peopleDevTrain.txt");
                let people = read_people_list(&people_file)?;
                let pairs = read_pairs(self.protocol_file("pairsDevTest.txt"))?;
                self.make_split(&people_file, people, &pairs, None)
            }
            Protocol::View2 { fold } => {
                let people_file = self.protocol_file("people.txt");
                let folds = read_people_folds(&people_file)?;
                let pairs = read_pairs(self.protocol_file("pairs.txt"))?;
                if fold >= folds.len() || fold >= pairs.folds {
                    return Err(DataError::Config(format!(
                        "view2 fold {fold} out of range: people.txt has {} folds, pairs.txt {}",
                        folds.len(),
                        pairs.folds
                    )));
                }
                let people = folds.into_iter().enumerate().filter(|(k, _)| *k != fold).flat_map(|(_, p)| p).collect();
                self.make_split(&people_file, people, &pairs, Some(fold))
            }
            Protocol::Pairs => {
                let pairs = read_pairs(self.protocol_file("pairs.txt"))?;
                self.make_split(Path::new(""), Vec::new(), &pairs, None)
            }
        }
    }

    fn make_split(&self, people_file: &Path, people: Vec<Person>, pairs: &PairsFile, fold: Option<usize>) -> Result<Split> {
        let train = self.train_set(people_file, people)?;
        let names: HashSet<&str> = train.classes.iter().map(String::as_str).collect();
        let mut kept = Vec::new();
        for (pair, &line) in pairs.pairs.iter().zip(&pairs.lines) {
            if fold.is_some_and(|k| pair.fold != k) {
                continue;
            }
            for image in [&pair.a, &pair.b] {
                if names.contains(image.name.as_str()) {
                    return Err(DataError::IdentityOverlap { name: image.name.clone(), protocol: pairs.path.clone() });
                }
                let path = self.image_path(image);
                if !path.is_file() {
                    return Err(DataError::MissingImage { protocol: pairs.path.clone(), line, image: path });
                }
            }
            kept.push(pair);
        }
        let test = PairSet::from_pairs(kept, |r| self.image_path(r));
        Ok(Split { train, test })
    }

    /// Images of `people` with dense class ids in name order.
    fn train_set(&self, people_file: &Path, mut people: Vec<Person>) -> Result<TrainSet> {
        people.sort_by(|a, b| a.name.cmp(&b.name));
        let mut set = TrainSet::default();
        for (i, person) in people.iter().enumerate() {
            if i > 0 && people[i - 1].name == person.name {
                return Err(DataError::parse(people_file, person.line, format!("{} is listed twice", person.name)));
            }
            let label = set.classes.len() as u32;
            for index in 1..=person.count {
                let path = self.image_path(&ImageRef { name: person.name.clone(), index });
                if !path.is_file() {
                    return Err(DataError::MissingImage { protocol: people_file.to_path_buf(), line: person.line, image: path });
                }
                set.paths.push(path);
                set.labels.push(label);
            }
            set.classes.push(person.name.clone());
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_round_trip() {
        for p in [Protocol::Dev, Protocol::Pairs, Protocol::View2 { fold: 7 }] {
            assert_eq!(p.to_string().parse::<Protocol>().unwrap(), p);
        }
        assert!("view2".parse::<Protocol>().is_err());
        assert!("view2:x".parse::<Protocol>().is_err());
        assert!("lfw".parse::<Protocol>().is_err());
        assert_eq!(Protocol::from_name("view2", Some(3)).unwrap().fold(), Some(3));
        assert!("view2:10".parse::<Protocol>().is_err());
        assert_eq!(serde_json::to_string(&Protocol::View2 { fold: 4 }).unwrap(), "\"view2:4\"");
        assert_eq!(serde_json::from_str::<Protocol>("\"dev\"").unwrap(), Protocol::Dev);
        assert!(serde_json::from_str::<Protocol>("\"view3\"").is_err());
    }
}
