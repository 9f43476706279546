//! `train --protocol view2 --folds`: LFW View 2 as one resumable multi-fold run, on
//! arcface-data's lfw-mini (two View 2 folds) with a tiny network. One sub-run per fold, a
//! summary whose mean and std are the folds' own, finished folds never retrained, an
//! interrupted fold resumed exactly, bad `--folds` and another config refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{arcface, assert_unchanged, code_and_err, snapshot, tiny_config};
use serde_json::Value;

/// `train --device cpu --config CONFIG --protocol view2 --folds FOLDS --out PARENT EXTRA...`.
fn folds(config: &Path, folds: &str, parent: &Path, extra: &[&str]) -> Output {
    arcface()
        .args(["train", "--device", "cpu", "--config"])
        .arg(config)
        .args(["--protocol", "view2", "--folds", folds, "--out"])
        .arg(parent)
        .args(extra)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Mean and population std, computed here independently of the code under test.
fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    (
        mean,
        (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt(),
    )
}

fn close(a: &Value, b: f64) -> bool {
    (a.as_f64().unwrap() - b).abs() < 1e-12
}

#[test]
fn two_folds_give_two_sub_runs_and_the_mean_and_std_of_their_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().join("runs/v2");
    let stdout = ok(&folds(&tiny_config(dir.path(), 1, ""), "0,1", &parent, &[]));

    let summary = json(&parent.join("summary.json"));
    let rows = summary["folds"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{summary}");
    let (mut acc, mut auc) = (Vec::new(), Vec::new());
    for (k, row) in rows.iter().enumerate() {
        assert_eq!(row["fold"], k);
        let sub = parent.join(format!("fold-{k}"));
        for file in ["config.toml", "model.safetensors", "eval/eval.json"] {
            assert!(
                sub.join(file).is_file(),
                "{} missing",
                sub.join(file).display()
            );
        }
        // Each sub-run trains with its own fold held out and is evaluated on that fold.
        let cfg = std::fs::read_to_string(sub.join("config.toml")).unwrap();
        assert!(cfg.contains(&format!("protocol = \"view2:{k}\"")), "{cfg}");
        let eval = json(&sub.join("eval/eval.json"));
        assert_eq!(eval["protocol"], format!("view2:{k}"));
        assert_eq!(row["accuracy"], eval["accuracy_mean"]);
        assert_eq!(row["auc"], eval["auc"]);
        // lfw-mini: each fold trains on the other fold's 3 people and their 7 images.
        assert_eq!(
            (
                row["train_images"].as_u64(),
                row["train_identities"].as_u64()
            ),
            (Some(7), Some(3))
        );
        acc.push(row["accuracy"].as_f64().unwrap());
        auc.push(row["auc"].as_f64().unwrap());
    }
    let agg = &summary["summary"];
    assert_eq!(agg["folds"], 2);
    let ((am, asd), (um, usd)) = (mean_std(&acc), mean_std(&auc));
    assert!(
        close(&agg["accuracy"]["mean"], am) && close(&agg["accuracy"]["std"], asd),
        "{agg}"
    );
    assert!(
        close(&agg["auc"]["mean"], um) && close(&agg["auc"]["std"], usd),
        "{agg}"
    );
    assert_eq!(summary["running"], Value::Null);
    assert!(stdout.contains("mean +- std"), "{stdout}");
    assert!(
        stdout.contains(&format!("{:.2}% +- {:.2}%", 100.0 * am, 100.0 * asd)),
        "{stdout}"
    );

    // One page for the whole run, with every fold's ROC.
    let html = std::fs::read_to_string(parent.join("report.html")).unwrap();
    assert!(html.contains("mean +- std") && html.contains("fold 0") && html.contains("fold 1"));
    assert!(parent.join("folds_roc.png").is_file());

    // `report` and `eval` on the parent folder.
    std::fs::remove_file(parent.join("report.html")).unwrap();
    let report = arcface().arg("report").arg(&parent).output().unwrap();
    assert!(ok(&report).contains("View 2 folds"));
    assert!(parent.join("report.html").is_file());
    // Found under runs/ by a plain `report`, the parent stands for its folds' sub-runs.
    let report = arcface()
        .args(["report", "--out", "across"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(ok(&report).contains("report of 2 run(s)"));
    let md = std::fs::read_to_string(dir.path().join("across/report.md")).unwrap();
    assert!(
        md.contains("| fold-0 |") && md.contains("| fold-1 |"),
        "{md}"
    );
    let eval = arcface()
        .args(["eval", "--device", "cpu", "--run"])
        .arg(&parent)
        .output()
        .unwrap();
    assert!(ok(&eval).contains("over 2 fold(s)"));
    let eval = arcface()
        .args(["eval", "--protocol", "dev", "--run"])
        .arg(&parent)
        .output()
        .unwrap();
    let (code, err) = code_and_err(&eval);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("multi-fold run") && err.contains("fold-K"),
        "{err}"
    );
}

#[test]
fn a_finished_fold_is_not_trained_again() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), 1, "");
    let parent = dir.path().join("v2");
    ok(&folds(&config, "0", &parent, &[]));
    let fold0 = snapshot(&parent.join("fold-0"));
    assert!(fold0.keys().any(|p| p.ends_with("model.safetensors")));
    let mtime = |p: PathBuf| std::fs::metadata(p).unwrap().modified().unwrap();
    let before = mtime(parent.join("fold-0/model.safetensors"));

    let stdout = ok(&folds(&config, "0,1", &parent, &[]));
    assert!(
        stdout.contains("fold 0: finished earlier, skipped"),
        "{stdout}"
    );
    assert_unchanged(&fold0, "the second command");
    assert_eq!(mtime(parent.join("fold-0/model.safetensors")), before);
    assert!(parent.join("fold-1/eval/eval.json").is_file());
    assert_eq!(json(&parent.join("summary.json"))["summary"]["folds"], 2);
}

#[test]
fn an_interrupted_fold_resumes_from_its_checkpoint_and_ends_as_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(
        dir.path(),
        2,
        "checkpoint_every = 1\nkeep_checkpoints = 100\n",
    );
    let parent = dir.path().join("v2");
    ok(&folds(&config, "0", &parent, &[]));
    let fold = parent.join("fold-0");
    let finished = std::fs::read(fold.join("model.safetensors")).unwrap();

    // What a kill at step 2 leaves: checkpoints up to step 2, no model, no eval, and the
    // summary naming fold 0 as the one in progress.
    let ckpts = fold.join("checkpoints");
    let mut later = 0;
    for e in std::fs::read_dir(&ckpts).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let step: u64 = name
            .trim_start_matches("step-")
            .split('.')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        if step > 2 {
            std::fs::remove_file(&path).unwrap();
            later += 1;
        }
    }
    assert!(later > 0, "the run should have checkpoints after step 2");
    std::fs::remove_file(fold.join("model.safetensors")).unwrap();
    std::fs::remove_dir_all(fold.join("eval")).unwrap();
    let mut summary = json(&parent.join("summary.json"));
    summary["folds"] = Value::Array(Vec::new());
    summary["summary"] = Value::Null;
    summary["running"] = 0.into();
    std::fs::write(parent.join("summary.json"), summary.to_string()).unwrap();

    let stdout = ok(&folds(&config, "0", &parent, &[]));
    assert!(stdout.contains("fold 0: resuming"), "{stdout}");
    let log = std::fs::read_to_string(fold.join("train.log")).unwrap();
    assert!(
        log.contains("resumed from") && log.contains("step 2"),
        "{log}"
    );
    assert!(
        std::fs::read(fold.join("model.safetensors")).unwrap() == finished,
        "resumed weights differ"
    );
    assert_eq!(json(&parent.join("summary.json"))["summary"]["folds"], 1);
}

#[test]
fn bad_folds_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), 1, "");
    let parent = dir.path().join("v2");
    let run = |args: &[&str]| {
        let out = arcface()
            .args(["train", "--device", "cpu", "--config"])
            .arg(&config)
            .arg("--out")
            .arg(&parent)
            .args(args)
            .output()
            .unwrap();
        code_and_err(&out)
    };
    let cases: [(&[&str], &str); 7] = [
        (
            &["--protocol", "view2", "--folds", "10"],
            "fold 10 is out of range",
        ),
        (
            &["--protocol", "view2", "--folds", "x"],
            "\"x\" is not a fold number",
        ),
        (
            &["--protocol", "view2", "--folds", "0,3,0"],
            "fold 0 is listed twice",
        ),
        (
            &["--protocol", "view2", "--folds", ""],
            "is not a fold number",
        ),
        (
            &["--protocol", "view2", "--fold", "1", "--folds", "0"],
            "cannot be used with",
        ),
        (
            &["--protocol", "dev", "--folds", "0"],
            "--folds goes with --protocol view2",
        ),
        // The tiny config's own protocol is dev.
        (&["--folds", "all"], "pass --protocol view2"),
    ];
    for (args, message) in cases {
        let (code, err) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(
            err.contains(message),
            "{args:?}: expected {message:?} in {err}"
        );
    }
    assert!(
        !parent.exists(),
        "a refused command created {}",
        parent.display()
    );
}

#[test]
fn another_config_is_not_mixed_into_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), 1, "");
    let parent = dir.path().join("v2");
    ok(&folds(&config, "0", &parent, &[]));
    let before = snapshot(&parent);
    for (cfg, extra) in [
        (config.clone(), &["--lr", "0.02"][..]),
        (tiny_config(dir.path(), 2, ""), &[][..]),
    ] {
        let (code, err) = code_and_err(&folds(&cfg, "0,1", &parent, extra));
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.contains("holds a View 2 run of another configuration"),
            "{err}"
        );
        assert!(err.contains("pass another --out"), "{err}");
    }
    assert_unchanged(&before, "a refused config");
    assert!(!parent.join("fold-1").exists());

    // A folder holding something else is not taken over either.
    let single = dir.path().join("single");
    std::fs::create_dir_all(&single).unwrap();
    std::fs::write(single.join("metrics.jsonl"), "{}\n").unwrap();
    let (code, err) = code_and_err(&folds(&config, "0", &single, &[]));
    assert_eq!(code, Some(2));
    assert!(err.contains("is not a View 2 multi-fold run"), "{err}");
}
