//! The `[loss]` head options reach the trainer: with sub-centers the checkpointed head holds
//! K centers per class, and label smoothing trains to a finite loss.

mod common;

use arcface_train::{checkpoint, train_with_stop, Checkpointer, RunOptions, StopFlag};

#[test]
fn sub_centers_and_label_smoothing_train_and_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = common::tiny(&tmp.path().join("cache"), "", 0.1);
    cfg.loss.sub_centers = 3;
    cfg.loss.label_smoothing = 0.1;
    let run = tmp.path().join("run");
    let opts = RunOptions {
        out: run.clone(),
        resume: false,
        device: candle::Device::Cpu,
        kernels: Default::default(),
        progress: arcface_data::Progress::Silent,
    };
    let s = train_with_stop(&cfg, &opts, &StopFlag::new()).unwrap();
    assert!(s.last_loss.is_some_and(f64::is_finite), "{:?}", s.last_loss);
    let (meta, path) = Checkpointer::new(run.join("checkpoints"), 3)
        .unwrap()
        .latest()
        .unwrap()
        .unwrap();
    let tensors = checkpoint::load_tensors(&path, &meta, &candle::Device::Cpu).unwrap();
    let head = &tensors["head.weight"];
    assert_eq!(head.dims(), [3 * s.num_classes, 16]);
}
