//! Checks against the real LFW files. They run only where the data is present and print a
//! message and pass otherwise (users' machines and CI lack it):
//! - protocol files in `../shared/data/lfw` (relative to the repo root),
//! - the extracted archive in `data/lfw` at the repo root
//!   (`tar -xzf lfw-deepfunneled.tgz -C data/lfw && cp *.txt data/lfw/`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use arcface_data::protocol::{read_names, read_pairs, read_people_folds, read_people_list};
use arcface_data::{Lfw, Protocol};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn present(dir: &Path, file: &str) -> bool {
    let ok = dir.join(file).exists();
    if !ok {
        eprintln!("skipping: {} not found", dir.join(file).display());
    }
    ok
}

#[test]
fn shared_protocol_files_parse_with_documented_counts() {
    let dir = repo_root().join("../shared/data/lfw");
    if !present(&dir, "pairs.txt") {
        return;
    }
    let pairs = read_pairs(dir.join("pairs.txt")).unwrap();
    assert_eq!((pairs.folds, pairs.per_fold, pairs.pairs.len()), (10, 300, 6000));
    assert_eq!(pairs.pairs.iter().filter(|p| p.same).count(), 3000);
    assert_eq!(pairs.lines[300], 302);
    let dev_train = read_pairs(dir.join("pairsDevTrain.txt")).unwrap();
    assert_eq!((dev_train.folds, dev_train.pairs.len()), (1, 2200));
    let dev_test = read_pairs(dir.join("pairsDevTest.txt")).unwrap();
    assert_eq!(dev_test.pairs.len(), 1000);
    let folds = read_people_folds(dir.join("people.txt")).unwrap();
    let sizes: Vec<usize> = folds.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![601, 555, 552, 560, 567, 527, 597, 601, 580, 609]);
    let images: u32 = folds.iter().flatten().map(|p| p.count).sum();
    assert_eq!(images, 13233);
    let train = read_people_list(dir.join("peopleDevTrain.txt")).unwrap();
    let test = read_people_list(dir.join("peopleDevTest.txt")).unwrap();
    assert_eq!((train.len(), test.len()), (4038, 1711));
    assert_eq!(train.iter().map(|p| p.count).sum::<u32>(), 9525);
    assert_eq!(test.iter().map(|p| p.count).sum::<u32>(), 3708);
    let names = read_names(dir.join("lfw-names.txt")).unwrap();
    assert_eq!(names.len(), 5749);
    // Each View 2 pairs fold draws its identities from the same people.txt fold.
    for (k, fold) in folds.iter().enumerate() {
        let people: HashSet<&str> = fold.iter().map(|p| p.name.as_str()).collect();
        for p in pairs.pairs.iter().filter(|p| p.fold == k) {
            assert!(people.contains(p.a.name.as_str()) && people.contains(p.b.name.as_str()));
        }
    }
}

#[test]
fn extracted_archive_dev_split() {
    let dir = repo_root().join("data/lfw");
    if !present(&dir, "lfw-deepfunneled") || !present(&dir, "peopleDevTrain.txt") {
        return;
    }
    let lfw = Lfw::open(&dir).unwrap();
    assert_eq!((lfw.identities().count(), lfw.num_images()), (5749, 13233));
    let split = lfw.split(&Protocol::Dev).unwrap();
    assert_eq!(split.train.len(), 9525);
    assert_eq!(split.train.num_classes(), 4038);
    assert_eq!(split.test.pairs.len(), 1000);
    let v2 = lfw.split(&Protocol::View2 { fold: 3 }).unwrap();
    assert_eq!(v2.test.pairs.len(), 600);
    assert_eq!(v2.train.num_classes(), 5749 - 560);
    assert_eq!(lfw.split(&Protocol::Pairs).unwrap().test.pairs.len(), 6000);
}
