//! End to end with a tiny random IResNet on arcface-data's lfw-mini fixture and the
//! `.bin` fixture: eval outputs, scores consistent with independently computed embeddings,
//! verify, embed, and clear errors for missing or bad inputs.

mod common;

use arcface_data::Preprocess;
use arcface_eval::embed::EmbedConfig;
use arcface_eval::embed_cmd::{embed_command, EmbedOptions};
use arcface_eval::metrics::{evaluate_scores, MetricsOptions};
use arcface_eval::run::{load_model, EvalOptions, ModelSource, PairSource};
use arcface_eval::verify::{compare, verify, VerifyOptions};
use arcface_eval::{eval_run, read_scores_tsv, FaceInput};
use common::*;

fn quiet(mut o: EvalOptions) -> EvalOptions {
    o.device = candle::Device::Cpu;
    o.embed.progress = arcface_data::Progress::Silent;
    o
}

#[test]
fn eval_verify_and_embed_on_lfw_mini() {
    let tmp = tempfile::tempdir().unwrap();
    let run = make_run(&tmp.path().join("run"), 7);
    let pairs = PairSource::Lfw {
        lfw_dir: lfw_mini(),
        protocol: "pairs".parse().unwrap(),
    };
    let res = eval_run(&quiet(EvalOptions::new(
        Some(ModelSource::Run(run.clone())),
        pairs,
    )))
    .unwrap();
    let eval = run.join("eval");
    assert_eq!(res.out_dir, eval);
    for f in ["eval.json", "summary.md", "scores.tsv"] {
        assert!(eval.join(f).is_file(), "missing {f}");
    }
    // Plots are arcface-report's: eval's core draws nothing.
    assert!(!eval.join("roc.png").exists());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(eval.join("eval.json")).unwrap()).unwrap();
    for k in [
        "accuracy_mean",
        "accuracy_std",
        "auc",
        "eer",
        "threshold",
        "folds",
        "roc",
        "protocol",
        "num_pairs",
        "flip",
    ] {
        assert!(!json[k].is_null(), "eval.json lacks {k}");
    }
    assert!(json["tar_at_far"]["0.001"].is_number() && json["tar_at_far"]["0.01"].is_number());
    assert_eq!(json["flip"], true);

    // Scores written agree with the metrics, and with embeddings computed pair by pair.
    let table = read_scores_tsv(&eval.join("scores.tsv")).unwrap();
    assert_eq!(table.scores.len(), res.report.num_pairs);
    let m = evaluate_scores(
        &table.scores,
        &table.same,
        table.folds.as_deref(),
        &MetricsOptions::default(),
    )
    .unwrap();
    assert!((m.accuracy_mean - res.report.accuracy_mean).abs() < 1e-12);
    let model = load_model(&ModelSource::Run(run.clone()), &candle::Device::Cpu).unwrap();
    let (a, b) = &table.names[0];
    let (s, _) = compare(
        &model.net,
        &model.info.preprocess,
        &FaceInput::Center,
        &model.device,
        &lfw_mini().join(a),
        &lfw_mini().join(b),
        true,
    )
    .unwrap();
    assert!(
        (s - table.scores[0]).abs() < 1e-5,
        "{s} vs {}",
        table.scores[0]
    );

    // verify: threshold from eval.json; an image against itself is (numerically) identical.
    let img = lfw_mini().join(a);
    let opts = VerifyOptions {
        model: ModelSource::Run(run.clone()),
        image_a: img.clone(),
        image_b: img.clone(),
        input: FaceInput::Center,
        threshold: None,
        device: candle::Device::Cpu,
        kernels: Default::default(),
        flip: true,
    };
    let v = verify(&opts).unwrap();
    assert!((v.similarity - 1.0).abs() < 1e-5);
    assert!((v.threshold - res.report.threshold).abs() < 1e-12);
    assert_eq!(v.same, v.similarity > v.threshold);
    let v = verify(&VerifyOptions {
        image_b: lfw_mini().join(b),
        threshold: Some(2.0),
        ..opts.clone()
    })
    .unwrap();
    assert!(!v.same && v.verdict() == "DIFFERENT");
    let bad = verify(&VerifyOptions {
        image_b: tmp.path().join("nope.jpg"),
        ..opts.clone()
    });
    assert!(bad.unwrap_err().to_string().contains("nope.jpg"));

    // embed: a folder -> N x 32 .npy plus a list; flip-test rows have unit norm.
    let folder = lfw_mini().join("lfw-deepfunneled/Aaron_Peirsol");
    let out = tmp.path().join("emb/aaron.npy");
    let eopts = EmbedOptions {
        model: ModelSource::Run(run.clone()),
        input: folder.clone(),
        output: out.clone(),
        faces: FaceInput::Center,
        device: candle::Device::Cpu,
        kernels: Default::default(),
        config: EmbedConfig {
            progress: arcface_data::Progress::Silent,
            ..Default::default()
        },
    };
    let r = embed_command(&eopts).unwrap();
    assert_eq!((r.count, r.dim), (3, 32));
    let e = candle::Tensor::read_npy(&out)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    for row in &e {
        let n: f32 = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-5);
    }
    let list = std::fs::read_to_string(out.with_extension("txt")).unwrap();
    assert_eq!(list.lines().count(), 3);
    assert!(list
        .lines()
        .next()
        .unwrap()
        .ends_with("Aaron_Peirsol_0001.jpg"));

    // embed never destroys a file that is not its own earlier output.
    let photo = folder.read_dir().unwrap().next().unwrap().unwrap().path();
    let photo = if photo.is_dir() { photo.read_dir().unwrap().next().unwrap().unwrap().path() } else { photo };
    let before = std::fs::read(&photo).unwrap();
    let as_input = EmbedOptions { input: photo.clone(), output: photo.clone(), ..eopts.clone() };
    let err = embed_command(&as_input).unwrap_err().to_string();
    assert!(err.contains(".npy"), "{err}");
    assert_eq!(std::fs::read(&photo).unwrap(), before);
    let notes = tmp.path().join("notes.txt");
    std::fs::write(&notes, "mine").unwrap();
    let err = embed_command(&EmbedOptions { output: tmp.path().join("notes.npy"), ..eopts.clone() })
        .unwrap_err()
        .to_string();
    assert!(err.contains("notes.txt"), "{err}");
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "mine");
    embed_command(&eopts).expect("an earlier embed's own outputs may be replaced");

    // embed: a .npy of pixels gives the same raw features as the images.
    let pre = Preprocess::default();
    let pixels: Vec<u8> = list.lines().flat_map(|p| pre.load(p).unwrap()).collect();
    let x = arcface_data::images_to_tensor(&pixels, 3, 112, &candle::Device::Cpu).unwrap();
    x.write_npy(tmp.path().join("x.npy")).unwrap();
    let raw = EmbedConfig {
        flip: false,
        normalize: false,
        progress: arcface_data::Progress::Silent,
        batch_size: 2,
    };
    let r1 = embed_command(&EmbedOptions {
        input: tmp.path().join("x.npy"),
        output: tmp.path().join("r1.npy"),
        config: raw.clone(),
        ..eopts.clone()
    })
    .unwrap();
    assert!(r1.list.is_none());
    let r2 = embed_command(&EmbedOptions {
        output: tmp.path().join("r2.npy"),
        config: raw,
        ..eopts.clone()
    })
    .unwrap();
    let a = candle::Tensor::read_npy(&r1.output).unwrap();
    let b = candle::Tensor::read_npy(&r2.output).unwrap();
    let diff = (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff < 1e-4, "{diff}");

    // embed: wrong .npy shape and unreadable images are errors naming the file.
    let wrong = tmp.path().join("wrong.npy");
    candle::Tensor::zeros((2, 3, 64, 64), candle::DType::F32, &candle::Device::Cpu)
        .unwrap()
        .write_npy(&wrong)
        .unwrap();
    let e = embed_command(&EmbedOptions {
        input: wrong.clone(),
        ..eopts.clone()
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("wrong.npy") && e.contains("N x 3 x 112 x 112"),
        "{e}"
    );
    let corrupt = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/tests/fixtures/bad/corrupt.jpg");
    let e = embed_command(&EmbedOptions {
        input: corrupt,
        ..eopts.clone()
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("corrupt.jpg"), "{e}");
}

#[test]
fn eval_bin_with_bare_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let run = make_run(&tmp.path().join("run"), 3);
    // A bare weight file needs a preset backbone name; the tiny model is not one, so this
    // must fail clearly (the file holds width-8 tensors, r18 expects width 64).
    let model = ModelSource::Weights {
        path: run.join("model.safetensors"),
        backbone: "r18".into(),
    };
    let o = quiet(EvalOptions::new(
        Some(model),
        PairSource::Bin(fixtures().join("mini.bin")),
    ));
    let o = EvalOptions {
        out_dir: Some(tmp.path().join("out")),
        ..o
    };
    let e = eval_run(&o).unwrap_err().to_string();
    assert!(e.contains("model.safetensors"), "{e}");
    // Through the run folder the .bin evaluates: 4 pairs, contiguous folds.
    let o = EvalOptions {
        model: Some(ModelSource::Run(run.clone())),
        ..o
    };
    let r = eval_run(&o).unwrap();
    assert_eq!(r.report.num_pairs, 4);
    assert!(r.report.protocol.starts_with("bin:"));
    assert!(tmp.path().join("out/eval.json").is_file());
}

#[test]
fn missing_inputs_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty_run");
    std::fs::create_dir_all(&empty).unwrap();
    let pairs = PairSource::Lfw {
        lfw_dir: lfw_mini(),
        protocol: "pairs".parse().unwrap(),
    };
    let e = eval_run(&quiet(EvalOptions::new(
        Some(ModelSource::Run(empty.clone())),
        pairs.clone(),
    )))
    .unwrap_err();
    assert!(e.to_string().contains("model.json"), "{e}");
    let run = make_run(&tmp.path().join("run"), 1);
    std::fs::remove_file(run.join("model.safetensors")).unwrap();
    let e = eval_run(&quiet(EvalOptions::new(Some(ModelSource::Run(run)), pairs))).unwrap_err();
    assert!(e.to_string().contains("model.safetensors"), "{e}");
    let bad_tsv = tmp.path().join("bad.tsv");
    std::fs::write(&bad_tsv, "same\tscore\n1\t0.3\nx\t0.2\n").unwrap();
    let mut o = quiet(EvalOptions::new(None, PairSource::Scores(bad_tsv)));
    o.out_dir = Some(tmp.path().join("o"));
    let e = eval_run(&o).unwrap_err().to_string();
    assert!(e.contains("bad.tsv:3"), "{e}");
}

#[test]
fn eval_of_score_file_needs_no_model() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = quiet(EvalOptions::new(
        None,
        PairSource::Scores(fixtures().join("scores.tsv")),
    ));
    o.out_dir = Some(tmp.path().to_path_buf());
    let r = eval_run(&o).unwrap();
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("scores_expected.json")).unwrap(),
    )
    .unwrap();
    let want = expected["given_folds"]["accuracy_mean"].as_f64().unwrap();
    assert!((r.report.accuracy_mean - want).abs() < 1e-9);
    assert!(!r.report.flip);
}

/// Real data, on demand: `ARCFACE_LFW_DIR=data/lfw cargo test -p arcface-eval --test eval_run
/// -- --ignored --nocapture`. A random tiny model on the 1000 dev pairs: checks the whole path
/// on real files and prints the timing; accuracy is only expected to be above chance-ish.
#[test]
#[ignore]
fn real_lfw_dev_with_random_tiny_model() {
    let Some(lfw) = std::env::var_os("ARCFACE_LFW_DIR") else {
        eprintln!("ARCFACE_LFW_DIR not set: skipped");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let run = make_run(&tmp.path().join("run"), 11);
    let pairs = PairSource::Lfw {
        lfw_dir: lfw.into(),
        protocol: "dev".parse().unwrap(),
    };
    let r = eval_run(&quiet(EvalOptions::new(Some(ModelSource::Run(run)), pairs))).unwrap();
    let rep = &r.report;
    eprintln!(
        "dev: {} pairs, accuracy {:.4} +- {:.4}, AUC {:.4}, EER {:.4}, {:.1} images/s ({:.1} s)",
        rep.num_pairs,
        rep.accuracy_mean,
        rep.accuracy_std,
        rep.auc,
        rep.eer,
        rep.images_per_sec,
        rep.embed_seconds
    );
    assert_eq!(rep.num_pairs, 1000);
    assert_eq!(rep.folds.len(), 10);
    assert!(rep.folds.iter().all(|f| f.num_pairs == 100));
}

#[test]
fn a_model_that_overflows_gives_an_error_not_a_verdict() {
    // Finite weights so large that the forward pass overflows: the embedding is NaN/inf, and
    // no similarity or verdict may be computed from it.
    let tmp = tempfile::tempdir().unwrap();
    let run = make_run(&tmp.path().join("run"), 7);
    let path = run.join("model.safetensors");
    let mut tensors = candle::safetensors::load(&path, &candle::Device::Cpu).unwrap();
    let w = tensors["fc.weight"].ones_like().unwrap().affine(3e38, 0.0).unwrap();
    tensors.insert("fc.weight".into(), w);
    candle::safetensors::save(&tensors, &path).unwrap();
    let img = lfw_mini().join("lfw-deepfunneled/Adam_Sandler/Adam_Sandler_0001.jpg");
    let err = verify(&VerifyOptions {
        model: ModelSource::Run(run.clone()),
        image_a: img.clone(),
        image_b: img.clone(),
        input: FaceInput::Center,
        threshold: Some(0.3),
        device: candle::Device::Cpu,
        kernels: Default::default(),
        flip: true,
    });
    let err = match err {
        Ok(v) => panic!("a verdict from an overflowing model: {v:?}"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("Adam_Sandler_0001.jpg") && err.contains("not finite"), "{err}");
}

#[test]
fn a_score_file_without_folds_gets_balanced_folds_whatever_its_order() {
    // The fixture's pairs without their fold column, once as they are and once sorted
    // same-pairs-first (the order of eval's own scores.tsv): contiguous folds would give the
    // sorted file one class per fold and a meaningless accuracy.
    let text = std::fs::read_to_string(fixtures().join("scores.tsv")).unwrap();
    let rows: Vec<(&str, &str)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0], f[1])
        })
        .collect();
    let mut sorted = rows.clone();
    sorted.sort_by_key(|(same, _)| std::cmp::Reverse(*same)); // stable: keeps each class's order
    let tmp = tempfile::tempdir().unwrap();
    let eval_of = |name: &str, rows: &[(&str, &str)]| {
        let path = tmp.path().join(name);
        let body: String = rows.iter().map(|(s, v)| format!("{s}\t{v}\n")).collect();
        std::fs::write(&path, format!("same\tscore\n{body}")).unwrap();
        let mut o = quiet(EvalOptions::new(None, PairSource::Scores(path)));
        o.out_dir = Some(tmp.path().join(format!("{name}.out")));
        eval_run(&o).unwrap().report
    };
    let (plain, by_class) = (eval_of("plain.tsv", &rows), eval_of("sorted.tsv", &sorted));
    assert_eq!(plain.accuracy_mean, by_class.accuracy_mean);
    assert!(by_class.accuracy_mean > 0.6, "{}", by_class.accuracy_mean);
}
