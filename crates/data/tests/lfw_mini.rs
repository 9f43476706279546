//! Integration tests of the public API on the committed `lfw-mini` fixture (see its README):
//! protocol splits, error reporting for bad inputs, the cache and the loader.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arcface_data::{
    scan_folder, DataError, EvalBatches, ImageCache, ImageRef, Lfw, Loader, LoaderConfig, Preprocess, Progress, Protocol,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn mini() -> Lfw {
    Lfw::open(fixtures().join("lfw-mini")).unwrap()
}

/// A writable copy of lfw-mini, for tests that break it.
fn mini_copy() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.path().is_dir() {
                copy(&e.path(), &to.join(e.file_name()));
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&fixtures().join("lfw-mini"), dir.path());
    dir
}

#[test]
fn open_lists_identities() {
    let lfw = mini();
    assert_eq!(lfw.identities().count(), 6);
    assert_eq!(lfw.num_images(), 14);
    assert_eq!(lfw.image_count("Alan_Greenspan"), Some(3));
    let p = lfw.image_path(&ImageRef { name: "Al_Pacino".into(), index: 1 });
    assert!(p.ends_with("lfw-deepfunneled/Al_Pacino/Al_Pacino_0001.jpg") && p.is_file());
}

#[test]
fn dev_split() {
    let s = mini().split(&Protocol::Dev).unwrap();
    assert_eq!(s.train.classes, vec!["Adam_Sandler", "Alan_Greenspan", "Alec_Baldwin"]);
    assert_eq!(s.train.labels, vec![0, 0, 1, 1, 1, 2, 2]);
    assert!(s.train.paths[2].ends_with("Alan_Greenspan/Alan_Greenspan_0001.jpg"));
    assert_eq!(s.test.pairs.len(), 4);
    assert_eq!(s.test.images.len(), 6);
    assert_eq!(s.test.pairs.iter().filter(|p| p.same).count(), 2);
    let p = s.test.pairs[3];
    assert!(s.test.images[p.a].ends_with("Abdoulaye_Wade_0003.jpg"));
    assert!(s.test.images[p.b].ends_with("Aaron_Peirsol_0002.jpg"));
    assert_eq!(s.train.filter_min_images(3).classes, vec!["Alan_Greenspan"]);
}

#[test]
fn view2_and_pairs_splits() {
    let lfw = mini();
    let s0 = lfw.split(&Protocol::View2 { fold: 0 }).unwrap();
    assert_eq!(s0.train.classes, vec!["Adam_Sandler", "Alan_Greenspan", "Alec_Baldwin"]);
    assert_eq!(s0.test.pairs.len(), 4);
    assert!(s0.test.pairs.iter().all(|p| p.fold == 0));
    let s1 = lfw.split(&Protocol::View2 { fold: 1 }).unwrap();
    assert_eq!(s1.train.classes, vec!["Aaron_Peirsol", "Abdoulaye_Wade", "Al_Pacino"]);
    assert_eq!(s1.train.len(), 7);
    assert!(s1.test.pairs.iter().all(|p| p.fold == 1));
    assert!(matches!(lfw.split(&Protocol::View2 { fold: 2 }), Err(DataError::Config(_))));
    let all = lfw.split(&Protocol::Pairs).unwrap();
    assert!(all.train.is_empty());
    assert_eq!((all.test.pairs.len(), all.test.num_folds()), (8, 2));
}

#[test]
fn missing_image_names_protocol_file_and_line() {
    let dir = mini_copy();
    std::fs::remove_file(dir.path().join("lfw-deepfunneled/Aaron_Peirsol/Aaron_Peirsol_0003.jpg")).unwrap();
    let lfw = Lfw::open(dir.path()).unwrap();
    match lfw.split(&Protocol::Dev).unwrap_err() {
        DataError::MissingImage { protocol, line, image } => {
            assert!(protocol.ends_with("pairsDevTest.txt"));
            assert_eq!(line, 2);
            assert!(image.ends_with("Aaron_Peirsol_0003.jpg"));
        }
        other => panic!("{other}"),
    }
    // The training side: people.txt line 3 says Aaron_Peirsol has 3 images.
    let e = lfw.split(&Protocol::View2 { fold: 1 }).unwrap_err();
    assert!(matches!(&e, DataError::MissingImage { line: 3, .. }), "{e}");
    assert!(e.to_string().contains("people.txt:3"), "{e}");
}

#[test]
fn overlapping_identities_are_refused() {
    let dir = mini_copy();
    // Put a test identity (Al_Pacino) into the training people.
    std::fs::write(dir.path().join("peopleDevTrain.txt"), "2\nAl_Pacino\t1\nAlec_Baldwin\t2\n").unwrap();
    let e = Lfw::open(dir.path()).unwrap().split(&Protocol::Dev).unwrap_err();
    assert!(matches!(&e, DataError::IdentityOverlap { name, .. } if name == "Al_Pacino"), "{e}");
}

#[test]
fn malformed_protocol_line_is_reported() {
    let dir = mini_copy();
    std::fs::write(dir.path().join("pairsDevTest.txt"), "2\nAaron_Peirsol\t2\t3\nAbdoulaye_Wade\t2\n").unwrap();
    let e = Lfw::open(dir.path()).unwrap().split(&Protocol::Dev).unwrap_err();
    assert!(matches!(&e, DataError::Parse { line: 3, .. }), "{e}");
    assert!(e.to_string().contains("pairsDevTest.txt:3"), "{e}");
}

#[test]
fn open_refuses_a_folder_without_images() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(Lfw::open(dir.path()), Err(DataError::Layout { .. })));
}

#[test]
fn scan_folder_on_the_image_tree() {
    let set = scan_folder(fixtures().join("lfw-mini/lfw-deepfunneled")).unwrap();
    assert_eq!((set.len(), set.num_classes()), (14, 6));
    assert_eq!(set.classes[0], "Aaron_Peirsol");
    assert_eq!(set.class_counts(), vec![3, 3, 2, 1, 3, 2]);
}

#[test]
fn bad_jpegs_and_missing_files_are_clear_errors() {
    let pre = Preprocess::default();
    for (file, needle) in [("truncated.jpg", "truncated"), ("corrupt.jpg", "cannot decode")] {
        let path = fixtures().join("bad").join(file);
        let e = pre.load(&path).unwrap_err();
        assert!(matches!(e, DataError::Decode { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains(file) && msg.contains(needle), "{msg}");
    }
    let e = pre.load(fixtures().join("bad/absent.jpg")).unwrap_err();
    assert!(matches!(&e, DataError::Io { path, .. } if path.ends_with("absent.jpg")), "{e}");
}

#[test]
fn preprocess_real_face() {
    let path = fixtures().join("lfw-mini/lfw-deepfunneled/Al_Pacino/Al_Pacino_0001.jpg");
    let pre = Preprocess::default();
    let px = pre.load(&path).unwrap();
    assert_eq!(px.len(), 112 * 112 * 3);
    // A face crop is neither blank nor saturated.
    let mean = px.iter().map(|&v| v as f64).sum::<f64>() / px.len() as f64;
    assert!((40.0..220.0).contains(&mean), "{mean}");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(pre.decode(&bytes, "x").unwrap(), px);
    let json = serde_json::to_string(&pre).unwrap();
    assert_eq!(serde_json::from_str::<Preprocess>(&json).unwrap(), pre);
}

#[test]
fn preview_grid_writes_png() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grid.png");
    let paths = scan_folder(fixtures().join("lfw-mini/lfw-deepfunneled")).unwrap().paths;
    arcface_data::preview_grid(&paths, &Preprocess::default(), 4, &out).unwrap();
    let img = image::open(&out).unwrap();
    // 4 columns x 4 rows of 112 with 2-pixel gaps.
    assert_eq!((img.width(), img.height()), (4 * 114 + 2, 4 * 114 + 2));
}

/// Counts the progress updates of 14-image tasks.
struct Counting(Arc<std::sync::atomic::AtomicUsize>);

impl arcface_data::ProgressSink for Counting {
    fn start(&self, task: &arcface_data::Task) -> Box<dyn arcface_data::TaskProgress> {
        assert_eq!(task.total, Some(14));
        Box::new(Counting(self.0.clone()))
    }
}

impl arcface_data::TaskProgress for Counting {
    fn set(&self, _done: u64) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    fn finish(&self) {}
}

#[test]
fn cache_builds_reopens_and_rebuilds_on_change() {
    let dir = tempfile::tempdir().unwrap();
    let set = scan_folder(fixtures().join("lfw-mini/lfw-deepfunneled")).unwrap();
    let pre = Preprocess::default();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let progress = Progress::sink(Counting(calls.clone()));
    let cache = ImageCache::build_or_open(&set.paths, &pre, dir.path(), progress.clone()).unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 14);
    assert_eq!(cache.len(), 14);
    assert_eq!(cache.get(5), pre.load(&set.paths[5]).unwrap().as_slice());
    assert!(cache.try_get(14).is_none());
    // Same inputs: reopened, no decoding.
    let again = ImageCache::build_or_open(&set.paths, &pre, dir.path(), progress.clone()).unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 14);
    assert_eq!(again.key(), cache.key());
    // Another crop: another key, rebuilt.
    let other = Preprocess { crop: arcface_data::CropBox { x: 60, y: 60, width: 130, height: 130 }, ..pre };
    let rebuilt = ImageCache::build_or_open(&set.paths, &other, dir.path(), progress).unwrap();
    assert_ne!(rebuilt.key(), cache.key());
    assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 28);
    // No temporary files are left behind.
    assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains("tmp")));
}

#[test]
fn cache_build_fails_on_a_bad_image_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let paths = vec![fixtures().join("lfw-mini/lfw-deepfunneled/Al_Pacino/Al_Pacino_0001.jpg"), fixtures().join("bad/corrupt.jpg")];
    let e = ImageCache::build_or_open(&paths, &Preprocess::default(), dir.path(), Progress::Silent).unwrap_err();
    assert!(e.to_string().contains("corrupt.jpg"), "{e}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn loader_and_eval_batches_on_real_images() {
    let set = scan_folder(fixtures().join("lfw-mini/lfw-deepfunneled")).unwrap();
    let pre = Preprocess::default();
    let cache = Arc::new(ImageCache::in_memory(&set.paths, &pre, Progress::Silent).unwrap());
    let config = LoaderConfig { batch_size: 4, seed: 3, flip: false, drop_last: false, prefetch: 2, ..LoaderConfig::default() };
    let loader = Loader::new(cache.clone(), set.labels.clone(), config).unwrap();
    let batches: Vec<_> = loader.epoch(0, 0).collect::<Result<_, _>>().unwrap();
    assert_eq!(batches.len(), 4);
    // The loader's tensor for an image equals images_to_tensor of the cached pixels.
    let b = &batches[1];
    let i = b.indices[2];
    let want = arcface_data::images_to_tensor(cache.get(i), 1, 112, &candle::Device::Cpu).unwrap();
    let got = b.images.narrow(0, 2, 1).unwrap();
    let diff: f32 = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap();
    assert_eq!(diff, 0.0);

    let eval = EvalBatches::new(set.paths.clone(), pre, 5).unwrap();
    assert_eq!(eval.num_batches(), 3);
    let eb: Vec<_> = eval.collect::<Result<_, _>>().unwrap();
    assert_eq!(eb.iter().map(|b| (b.start, b.images.dims()[0])).collect::<Vec<_>>(), vec![(0, 5), (5, 5), (10, 4)]);
    let want = arcface_data::images_to_tensor(cache.get(12), 1, 112, &candle::Device::Cpu).unwrap();
    let diff: f32 = (eb[2].images.narrow(0, 2, 1).unwrap() - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap();
    assert_eq!(diff, 0.0);
    // A bad file surfaces as an error item naming it.
    let mut bad = EvalBatches::new(vec![fixtures().join("bad/truncated.jpg")], pre, 5).unwrap();
    assert!(bad.next().unwrap().unwrap_err().to_string().contains("truncated.jpg"));
}
