//! The cross-run report on synthetic run folders: a run with training metrics and an
//! evaluation (from the committed score fixture), and a run with training metrics only.
//! `ARCFACE_REPORT_DIR=/some/dir` keeps the output to look at (or screenshot with
//! `scripts/render_report.sh`).

use std::path::{Path, PathBuf};

use arcface_backbone::{init_varmap, save_weights, Config};
use arcface_data::Preprocess;
use arcface_eval::run::{EvalOptions, PairSource};
use arcface_eval::{eval_run, ModelInfo, RunDir};
use arcface_report::report::{curves, read_run, write_report};
use arcface_report::write_eval_plots;

/// arcface-eval's fixtures (the committed score file).
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../eval/tests/fixtures")
}

/// A run folder with `model.json` and the weights of a tiny random IResNet.
fn make_run(dir: &Path, seed: u64) -> PathBuf {
    let backbone = Config {
        layers: [1, 1, 1, 1],
        width: 8,
        input_size: 112,
        num_features: 32,
        dropout: 0.0,
    };
    let run = RunDir::new(dir);
    run.create().unwrap();
    let varmap = candle_nn::VarMap::new();
    init_varmap(&backbone, &varmap, &candle::Device::Cpu, seed).unwrap();
    save_weights(&varmap, run.final_weights_path()).unwrap();
    let info = ModelInfo {
        backbone,
        preprocess: Preprocess::default(),
        loss: "arcface".into(),
        protocol: "dev".into(),
        fold: None,
    };
    run.write_model_info(&info).unwrap();
    dir.to_path_buf()
}

fn write_metrics(dir: &Path, steps: usize, speed: f64) {
    let mut s = String::new();
    for i in 1..=steps {
        let step = i * 10;
        let loss = 20.0 / (1.0 + i as f64 * 0.3);
        let acc = 1.0 - 1.0 / (1.0 + i as f64 * 0.2);
        let lr = 0.1 * (1.0 - i as f64 / steps as f64 * 0.9);
        s += &format!(
            "{{\"kind\":\"train\",\"step\":{step},\"epoch\":{},\"loss\":{loss},\"accuracy\":{acc},\"lr\":{lr},\"images_per_sec\":{},\"elapsed_s\":{}}}\n",
            i / 10,
            speed + i as f64,
            i as f64 * 12.5
        );
        if i % 10 == 0 {
            s += &format!("{{\"kind\":\"val\",\"step\":{step},\"epoch\":{},\"accuracy\":{},\"threshold\":0.3}}\n", i / 10, acc * 0.9);
        }
    }
    std::fs::write(dir.join("metrics.jsonl"), s).unwrap();
}

#[test]
fn report_across_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let keep = std::env::var_os("ARCFACE_REPORT_DIR").map(std::path::PathBuf::from);
    let root = keep.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let a = make_run(&root.join("runs/r-arcface"), 1);
    write_metrics(&a, 60, 100.0);
    let mut o = EvalOptions::new(None, PairSource::Scores(fixtures().join("scores.tsv")));
    o.out_dir = Some(a.join("eval"));
    let evaluated = eval_run(&o).unwrap();
    let plots = write_eval_plots(&evaluated).unwrap();
    assert_eq!(plots.len(), 4);
    assert!(plots.iter().all(|p| p.is_file()));
    let b = make_run(&root.join("runs/r-softmax"), 2);
    write_metrics(&b, 40, 150.0);

    let records = RunDir::new(&a).metrics().unwrap();
    let (curves, speed, time) = curves(&records, "a");
    assert_eq!(curves.loss.len(), 60);
    assert_eq!(curves.val_accuracy.len(), 6);
    assert_eq!(speed, Some(131.0)); // median of 101..=160 (upper middle)
    assert_eq!(time, Some(750.0));

    let broken = root.join("runs/not-a-run");
    let html = write_report(&[a.clone(), broken, b.clone()], &root.join("report")).unwrap();
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(text.contains("<td>r-arcface</td>") && text.contains("<td>r-softmax</td>"));
    assert!(
        text.contains("87.00% +- 5.34%"),
        "accuracy of the fixture scores"
    );
    assert!(text.matches("<svg").count() >= 2);
    assert!(
        !text.contains("src=\"http") && !text.contains("href=\"http"),
        "no external resources"
    );
    let md = std::fs::read_to_string(root.join("report/report.md")).unwrap();
    assert!(
        md.contains("| r-softmax | [1, 1, 1, 1] (width 8) | arcface |"),
        "{md}"
    );
    assert!(
        root.join("report/report_curves.png").is_file()
            && root.join("report/report_roc.png").is_file()
    );
}

#[test]
fn bad_run_folders_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let e = read_run(&tmp.path().join("missing"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing"), "{e}");
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(read_run(&empty)
        .unwrap_err()
        .to_string()
        .contains("nothing to report"));
    std::fs::write(
        empty.join("metrics.jsonl"),
        "not json\n{\"kind\":\"val\",\"step\":1,\"epoch\":0,\"accuracy\":0.5,\"threshold\":0.1}\n",
    )
    .unwrap();
    let e = read_run(&empty).unwrap_err().to_string();
    assert!(e.contains("metrics.jsonl:1"), "{e}");
    assert!(write_report(&[], tmp.path()).is_err());
    assert!(write_report(&[empty], &tmp.path().join("out")).is_err());
}
