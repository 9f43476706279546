//! The `arcface` binary as a user runs it: outputs, exit codes and error messages.

mod common;

use std::process::Command;

use common::{arcface, workspace};

#[test]
fn summary_prints_insightface_r50_counts() {
    let out = arcface().args(["summary", "--backbone", "r50"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    // PyTorch's counts for InsightFace's IResNet-50 at 112x112 (crates/backbone/tests/fixtures/make_fixture.py --counts).
    assert!(text.contains("43590848"), "{text}");
    assert!(text.contains("6309330944"), "{text}");
}

#[test]
fn summary_rejects_an_unknown_backbone() {
    let out = arcface().args(["summary", "--backbone", "r51"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown backbone `r51`"));
}

#[test]
fn verify_exits_2_naming_an_unreadable_image() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("not-a-face.jpg");
    std::fs::write(&bad, b"this is not a jpeg").unwrap();
    let weights = dir.path().join("missing.safetensors");
    let out = arcface()
        .arg("verify")
        .arg(&bad)
        .arg(&bad)
        .args(["--backbone", "r18", "--weights"])
        .arg(&weights)
        .args(["--threshold", "0.3", "--device", "cpu"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "verify must not exit 0/1 on an error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error:"), "{err}");
}

#[test]
fn eval_scores_matches_the_sklearn_fixture() {
    // Expected values: crates/eval/tests/fixtures/make_scores_fixture.py (scikit-learn).
    let fixtures = workspace().join("crates/eval/tests/fixtures");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("scores_expected.json")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let out = arcface()
        .arg("eval")
        .arg("--scores")
        .arg(fixtures.join("scores.tsv"))
        .arg("--out")
        .arg(dir.path())
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // The file has a `fold` column, so its own folds are used ("given_folds" in the fixture).
    let want = &expected["given_folds"];
    for key in ["accuracy_mean", "accuracy_std", "auc"] {
        let (g, w) = (got[key].as_f64().unwrap(), want[key].as_f64().expect("fixture value"));
        assert!((g - w).abs() < 1e-9, "{key}: {g} vs scikit-learn {w}");
    }
    for key in ["accuracy_mean", "accuracy_std", "eer", "threshold", "tar_at_far", "folds"] {
        assert!(got.get(key).is_some(), "eval.json lacks {key}");
    }
}

#[test]
fn train_rejects_an_invalid_override_before_any_work() {
    let out = arcface().args(["train", "--config", "quick", "--input-size", "50", "--out"]).arg(
        tempfile::tempdir().unwrap().path().join("run"),
    ).current_dir(workspace()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("input_size"), "{err}");
}

#[test]
fn train_rejects_names_no_type_knows_before_any_work() {
    // Run from an empty folder: the presets are compiled in, not found through the working
    // directory.
    let here = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let out = arcface()
            .args(["train", "--config", "quick", "--out", "run"])
            .args(extra)
            .current_dir(here.path())
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run(&["--precision", "f16"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("f16") && err.contains("bf16"), "{err}");
    let (code, err) = run(&["--loss", "softmax", "--margin", "0.3"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("softmax loss has no single margin"), "{err}");
    let (code, err) = run(&["--protocol", "view2", "--fold", "10"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("fold 10"), "{err}");
    let (code, err) = run(&["--protocol", "dev", "--fold", "3"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--fold goes with --protocol view2"), "{err}");
    assert!(!here.path().join("run").exists(), "nothing written before the config is valid");
}

#[test]
fn an_interrupted_train_exits_130_so_train_and_eval_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let lfw = workspace().join("crates/data/tests/fixtures/lfw-mini");
    let config = tmp.path().join("long.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"long\"\n[data]\nlfw_dir = \"{}\"\ncache_dir = \"{}\"\nalign = \"center\"\n\
             [model]\nbackbone = \"r18\"\nwidth = 8\ninput_size = 32\nnum_features = 16\n\
             [schedule]\nlr = 0.01\n[train]\nepochs = 100000\nbatch_size = 2\nlog_every = 1\n\
             validate = false\neval_at_end = false\n",
            lfw.display(),
            tmp.path().join("cache").display()
        ),
    )
    .unwrap();
    let run = tmp.path().join("run");
    let mut child = arcface()
        .args(["train", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&run)
        .args(["--device", "cpu"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Stop it once it is training (its log has a step line), as Ctrl-C or a scheduler would.
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(run.join("train.log")).is_ok_and(|t| t.contains("step ")) {
        assert!(started.elapsed().as_secs() < 120, "training never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(run.join("checkpoints").read_dir().unwrap().next().is_some(), "a checkpoint was written");
}

#[test]
fn zero_counts_and_a_foldless_view2_are_refused_with_the_fix() {
    for args in [&["bench", "--steps", "0"][..], &["eval", "--scores", "x.tsv", "--batch-size", "0"], &["embed", "--batch-size", "0"]] {
        let out = arcface().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("must be at least 1"), "{args:?}: {err}");
    }
    let out = arcface().args(["eval", "--weights", "w.safetensors", "--backbone", "r18", "--protocol", "view2"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("view2:<fold>") && err.contains("pairs"), "{err}");
}

#[test]
fn eval_and_verify_name_what_is_really_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-run");
    let img = workspace().join("crates/data/tests/fixtures/lfw-mini/lfw-deepfunneled/Adam_Sandler/Adam_Sandler_0001.jpg");
    let out = arcface().arg("verify").arg(&img).arg(&img).arg("--run").arg(&missing).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no such run folder") && err.contains("no-such-run"), "{err}");
    // A score file needs no model: naming one beside it is an error, not silently ignored.
    let scores = workspace().join("crates/eval/tests/fixtures/scores.tsv");
    let out = arcface().arg("eval").arg("--scores").arg(&scores).arg("--run").arg(&missing).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}
