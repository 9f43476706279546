//! The two shapes of data the rest of the workspace consumes: a labelled training set
//! (image paths with dense class ids) and a verification pair set (unique images plus index
//! pairs), as produced by the LFW protocols and by folder scanning.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::protocol::{ImageRef, Pair};

/// Labelled training images: `labels[i]` is the class of `paths[i]`, an index into `classes`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrainSet {
    /// Image files.
    pub paths: Vec<PathBuf>,
    /// Dense class id of each image, `0..classes.len()`.
    pub labels: Vec<u32>,
    /// Class names, sorted; the class id is the position.
    pub classes: Vec<String>,
}

impl TrainSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Number of classes (identities).
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// Images per class, indexed by class id.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// Keeps only identities with at least `min_images` images and renumbers the survivors
    /// densely, preserving their (sorted) order. Identities with one image teach a margin
    /// loss little but cost a class centre each, which matters on small data.
    pub fn filter_min_images(&self, min_images: usize) -> TrainSet {
        let counts = self.class_counts();
        let mut remap = vec![None; self.classes.len()];
        let mut classes = Vec::new();
        for (c, name) in self.classes.iter().enumerate() {
            if counts[c] >= min_images {
                remap[c] = Some(classes.len() as u32);
                classes.push(name.clone());
            }
        }
        let mut out = TrainSet { classes, ..TrainSet::default() };
        for (path, &label) in self.paths.iter().zip(&self.labels) {
            if let Some(Some(new)) = remap.get(label as usize) {
                out.paths.push(path.clone());
                out.labels.push(*new);
            }
        }
        out
    }
}

/// A verification pair as indices into [`PairSet::images`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexPair {
    /// Index of the first image.
    pub a: usize,
    /// Index of the second image.
    pub b: usize,
    /// Whether both show the same person.
    pub same: bool,
    /// 0-based fold.
    pub fold: usize,
}

/// Verification pairs over a list of unique images, so each image is embedded once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairSet {
    /// Unique image files, in order of first appearance in the pairs.
    pub images: Vec<PathBuf>,
    /// The pairs, in file order.
    pub pairs: Vec<IndexPair>,
}

impl PairSet {
    /// Builds a pair set, mapping each image reference to its file with `path_of`.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = &'a Pair>, path_of: impl Fn(&ImageRef) -> PathBuf) -> Self {
        let mut index: HashMap<&'a ImageRef, usize> = HashMap::new();
        let mut set = PairSet::default();
        let mut id = |r: &'a ImageRef, set: &mut PairSet| {
            *index.entry(r).or_insert_with(|| {
                set.images.push(path_of(r));
                set.images.len() - 1
            })
        };
        for p in pairs {
            let a = id(&p.a, &mut set);
            let b = id(&p.b, &mut set);
            set.pairs.push(IndexPair { a, b, same: p.same, fold: p.fold });
        }
        set
    }

    /// Number of distinct folds (highest fold + 1).
    pub fn num_folds(&self) -> usize {
        self.pairs.iter().map(|p| p.fold + 1).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_min_images_redensifies() {
        let set = TrainSet {
            paths: ["a1", "b1", "a2", "c1", "c2", "c3"].iter().map(PathBuf::from).collect(),
            labels: vec![0, 1, 0, 2, 2, 2],
            classes: vec!["a".into(), "b".into(), "c".into()],
        };
        assert_eq!(set.class_counts(), vec![2, 1, 3]);
        let f = set.filter_min_images(2);
        assert_eq!(f.classes, vec!["a".to_string(), "c".to_string()]);
        assert_eq!(f.labels, vec![0, 0, 1, 1, 1]);
        assert_eq!(f.paths[2], PathBuf::from("c1"));
        assert_eq!(set.filter_min_images(4).len(), 0);
        assert_eq!(set.filter_min_images(0), set);
    }

    #[test]
    fn pair_set_dedupes_images() {
        let r = |n: &str, i| ImageRef { name: n.into(), index: i };
        let pairs = vec![
            Pair { a: r("A", 1), b: r("A", 2), same: true, fold: 0 },
            Pair { a: r("A", 1), b: r("B", 1), same: false, fold: 1 },
        ];
        let set = PairSet::from_pairs(&pairs, |r| PathBuf::from(r.file_name()));
        assert_eq!(set.images.len(), 3);
        assert_eq!(set.pairs[1], IndexPair { a: 0, b: 2, same: false, fold: 1 });
        assert_eq!(set.num_folds(), 2);
    }
}
