//! Hostile input, end to end: what a careless or unlucky user does to the `arcface` binary
//! (issue 17's list and what was found since). Every case asserts the exit code, a phrase of
//! the message, and that no file that existed before the command changed.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// A copy of the tiny trained run in `dir`.
fn run_copy(dir: &Path) -> PathBuf {
    let run = dir.join("run");
    copy_dir(tiny_run(), &run);
    run
}

/// Rewrites the safetensors file at `path` with `edit(header, data)`.
fn edit_safetensors(path: &Path, edit: impl FnOnce(&mut String, &mut [u8])) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header = String::from_utf8(bytes[8..8 + n].to_vec()).unwrap();
    let mut data = bytes[8 + n..].to_vec();
    edit(&mut header, &mut data);
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&data);
    std::fs::write(path, out).unwrap();
}

#[test]
fn damaged_weights_give_an_error_not_a_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    let run = run_copy(tmp.path());
    // Before: `similarity NaN`, DIFFERENT, exit 1, even for an image against itself.
    edit_safetensors(&run.join("model.safetensors"), |_, data| data[..4].copy_from_slice(&f32::NAN.to_le_bytes()));
    let before = snapshot(tmp.path());
    let out = arcface().arg("verify").arg(photo()).arg(photo()).arg("--run").arg(&run).args(["--threshold", "0.3", "--device", "cpu", "--align", "center"]).output().unwrap();
    let (code, err) = code_and_err(&out);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("model.safetensors") && err.contains("NaN"), "{err}");
    assert_unchanged(&before, "verify");
    // Before: integer tensors loaded as whole numbers and gave all-zero embeddings, exit 0.
    edit_safetensors(&run.join("model.safetensors"), |header, data| {
        *header = header.replace("\"F32\"", "\"I32\"");
        data[..4].copy_from_slice(&0f32.to_le_bytes());
    });
    let before = snapshot(tmp.path());
    let out = arcface()
        .args(["embed", "--device", "cpu", "--align", "center", "--run"])
        .arg(&run)
        .arg("--input")
        .arg(photo())
        .arg("--output")
        .arg(tmp.path().join("e.npy"))
        .output()
        .unwrap();
    let (code, err) = code_and_err(&out);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("integer dtype"), "{err}");
    assert!(!tmp.path().join("e.npy").exists());
    assert_unchanged(&before, "embed");
}

#[test]
fn train_never_replaces_a_finished_run() {
    let tmp = tempfile::tempdir().unwrap();
    let run = run_copy(tmp.path());
    std::fs::remove_dir_all(run.join("checkpoints")).unwrap();
    let config = tiny_config(tmp.path(), 1, "");
    let before = snapshot(tmp.path());
    let out = arcface().args(["train", "--device", "cpu", "--config"]).arg(&config).arg("--out").arg(&run).output().unwrap();
    let (code, err) = code_and_err(&out);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("already holds a run"), "{err}");
    assert_unchanged(&before, "train --out over a finished run");
}

#[test]
fn embed_never_replaces_a_file_it_does_not_own() {
    let tmp = tempfile::tempdir().unwrap();
    let run = run_copy(tmp.path());
    let face = tmp.path().join("face.jpg");
    std::fs::copy(photo(), &face).unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "my notes\n").unwrap();
    let before = snapshot(tmp.path());
    for (output, phrase) in [("face.jpg", "must be a .npy"), ("notes.npy", "is not the image list")] {
        let out = arcface()
            .args(["embed", "--device", "cpu", "--align", "center", "--run"])
            .arg(&run)
            .arg("--input")
            .arg(&face)
            .arg("--output")
            .arg(tmp.path().join(output))
            .output()
            .unwrap();
        let (code, err) = code_and_err(&out);
        assert_eq!(code, Some(2), "{output}: {err}");
        assert!(err.contains(phrase), "{output}: {err}");
        assert_unchanged(&before, output);
    }
}

#[test]
fn a_score_file_sorted_by_class_scores_as_when_interleaved() {
    // Before: without a fold column a file sorted same-pairs-first got one class per fold
    // (accuracy 52% instead of 62%). Folds are now balanced per class in file order, so the
    // class-sorted and the interleaved file (same order within each class) agree.
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(workspace().join("crates/eval/tests/fixtures/scores.tsv")).unwrap();
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let (same, score) = (header.iter().position(|c| *c == "same").unwrap(), header.iter().position(|c| *c == "score").unwrap());
    let rows: Vec<(String, String)> = lines.map(|l| {
        let f: Vec<&str> = l.split('\t').collect();
        (f[same].to_string(), f[score].to_string())
    }).collect();
    let (pos, neg): (Vec<_>, Vec<_>) = rows.iter().partition(|(s, _)| s == "1");
    let write = |name: &str, rows: Vec<&(String, String)>| {
        let body: String = rows.iter().map(|(s, v)| format!("{s}\t{v}\n")).collect();
        let path = tmp.path().join(name);
        std::fs::write(&path, format!("same\tscore\n{body}")).unwrap();
        path
    };
    let sorted = write("sorted.tsv", pos.iter().chain(&neg).copied().collect());
    let mixed = write("mixed.tsv", pos.iter().zip(&neg).flat_map(|(a, b)| [*a, *b]).collect());
    let accuracy = |file: &Path, out: &str| {
        let json = tmp.path().join(format!("{out}.json"));
        let o = arcface().arg("eval").arg("--scores").arg(file).arg("--out").arg(tmp.path().join(out)).arg("--json").arg(&json).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
        v["accuracy_mean"].as_f64().unwrap()
    };
    assert_eq!(pos.len(), neg.len(), "the fixture is balanced");
    assert_eq!(accuracy(&sorted, "s"), accuracy(&mixed, "m"));
}

#[test]
fn report_reads_a_cut_log_and_leaves_out_a_broken_run() {
    let tmp = tempfile::tempdir().unwrap();
    let cut = tmp.path().join("cut");
    copy_dir(tiny_run(), &cut);
    // What a killed or disk-full run leaves: half a line.
    let mut log = std::fs::read(cut.join("metrics.jsonl")).unwrap();
    log.extend_from_slice(b"{\"kind\":\"train\",\"ste");
    std::fs::write(cut.join("metrics.jsonl"), log).unwrap();
    let broken = tmp.path().join("broken");
    copy_dir(tiny_run(), &broken);
    std::fs::write(broken.join("metrics.jsonl"), "not json\n{\"kind\":\"val\"}\n").unwrap();
    let before = snapshot(tmp.path());
    let out = arcface().arg("report").arg(&cut).arg(&broken).arg("--out").arg(tmp.path().join("report")).output().unwrap();
    let (code, err) = code_and_err(&out);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("broken"), "the broken run is named in a warning: {err}");
    let md = std::fs::read_to_string(tmp.path().join("report/report.md")).unwrap();
    assert!(md.contains("cut"), "{md}");
    assert_unchanged(&before, "report");
}

/// A pickle as InsightFace writes a `.bin`: `(list of bytes, list of bool)`, protocol 3.
fn pickle_bin(images: &[Vec<u8>], issame: &[bool]) -> Vec<u8> {
    let mut p = vec![0x80, 3, b']', b'('];
    for img in images {
        p.push(b'B');
        p.extend_from_slice(&(img.len() as u32).to_le_bytes());
        p.extend_from_slice(img);
    }
    p.extend_from_slice(b"e](");
    p.extend(issame.iter().map(|&s| if s { 0x88 } else { 0x89 }));
    p.extend_from_slice(b"e\x86.");
    p
}

/// A grey `side x side` RGB PNG, written with stored deflate blocks (no compressor needed).
fn grey_png(side: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in bytes {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 == 1 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }
    let chunk = |out: &mut Vec<u8>, kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let raw: Vec<u8> = (0..side).flat_map(|_| std::iter::once(0).chain(std::iter::repeat_n(128, 3 * side as usize))).collect();
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, b) in blocks.iter().enumerate() {
        z.push((i + 1 == blocks.len()) as u8);
        z.extend_from_slice(&(b.len() as u16).to_le_bytes());
        z.extend_from_slice(&(!(b.len() as u16)).to_le_bytes());
        z.extend_from_slice(b);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + x as u32) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = side.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &z);
    chunk(&mut png, b"IEND", &[]);
    png
}

#[test]
fn eval_bin_refuses_mixed_sizes_and_never_replaces_the_runs_own_eval() {
    let tmp = tempfile::tempdir().unwrap();
    let run = run_copy(tmp.path());
    std::fs::create_dir_all(run.join("eval")).unwrap();
    std::fs::write(run.join("eval/eval.json"), "the run's own evaluation").unwrap();
    let jpegs: Vec<Vec<u8>> = ["Aaron_Peirsol_0001", "Aaron_Peirsol_0002", "Aaron_Peirsol_0003", "Abdoulaye_Wade_0001"]
        .iter()
        .map(|n| std::fs::read(lfw_mini().join(format!("lfw-deepfunneled/{}/{n}.jpg", &n[..n.len() - 5]))).unwrap())
        .collect();
    // Before: a 300x300 face among 250x250 ones was cropped with the 250 box and scored.
    let mut images = jpegs.clone();
    images[3] = grey_png(300);
    let mixed = tmp.path().join("mixed.bin");
    std::fs::write(&mixed, pickle_bin(&images, &[true, false])).unwrap();
    let mut cut = jpegs.clone();
    let half = cut[2].len() / 2;
    cut[2].truncate(half);
    let broken = tmp.path().join("broken.bin");
    std::fs::write(&broken, pickle_bin(&cut, &[true, false])).unwrap();
    let before = snapshot(tmp.path());
    for (bin, phrase) in [(&mixed, "image 3 is 300x300 but image 0 is 250x250"), (&broken, "broken.bin: image 2")] {
        let out = arcface().args(["eval", "--device", "cpu", "--run"]).arg(&run).arg("--bin").arg(bin).output().unwrap();
        let (code, err) = code_and_err(&out);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains(phrase), "{err}");
        assert_unchanged(&before, "eval --bin");
    }
    // A sound .bin on the run writes beside the run's eval, never over it.
    let good = tmp.path().join("good.bin");
    std::fs::write(&good, pickle_bin(&jpegs, &[true, false])).unwrap();
    let out = arcface().args(["eval", "--device", "cpu", "--run"]).arg(&run).arg("--bin").arg(&good).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_unchanged(&before, "eval --bin of a good file");
}

#[test]
fn a_full_disk_names_the_file_and_leaves_no_debris() {
    let tmp = tempfile::tempdir().unwrap();
    let scores = workspace().join("crates/eval/tests/fixtures/scores.tsv");
    std::fs::create_dir_all(tmp.path().join("out")).unwrap();
    std::fs::write(tmp.path().join("out/keep.txt"), "a file of the user's").unwrap();
    let before = snapshot(tmp.path());
    // A file-size limit stands in for a full disk (no root for a tiny tmpfs): writes past it
    // fail with EFBIG once SIGXFSZ is ignored, as ENOSPC fails them. Several sizes cut
    // different files.
    let mut failed = 0;
    for kb in [1, 2, 4, 8] {
        let script = format!("trap '' XFSZ; ulimit -f {kb}; exec \"$0\" \"$@\"");
        let out = std::process::Command::new("bash")
            .args(["-c", &script])
            .arg(env!("CARGO_BIN_EXE_arcface"))
            .arg("eval")
            .arg("--scores")
            .arg(&scores)
            .arg("--out")
            .arg(tmp.path().join("out"))
            .output()
            .unwrap();
        let (code, err) = code_and_err(&out);
        if code == Some(0) {
            continue;
        }
        failed += 1;
        assert_eq!(code, Some(2), "{kb} KB: {err}");
        assert!(err.contains("File too large") && err.contains("/out/"), "{kb} KB: names the file: {err}");
        let debris: Vec<_> = std::fs::read_dir(tmp.path().join("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(debris.is_empty(), "{kb} KB: temporary files left: {debris:?}");
        assert_unchanged(&before, "disk full");
    }
    assert!(failed > 0, "no size limit was small enough to fail a write");
}

#[test]
fn wrong_flags_and_absurd_sizes_are_refused_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let scores = workspace().join("crates/eval/tests/fixtures/scores.tsv");
    let config = tiny_config(tmp.path(), 0, "");
    let missing = tmp.path().join("no-such-run");
    let cases: Vec<(Vec<std::ffi::OsString>, &str)> = vec![
        (os(&["verify", &p(&photo()), &p(&photo()), "--run", &p(&missing)]), "no such run folder"),
        (os(&["train", "--config", &p(&config), "--out", &p(&tmp.path().join("r"))]), "`train.epochs`: must be at least 1, got 0"),
        (os(&["eval", "--scores", &p(&scores), "--batch-size", "0"]), "must be at least 1"),
        (os(&["train", "--config", "quick", "--protocol", "dev", "--fold", "3"]), "--fold goes with --protocol view2"),
        (os(&["eval", "--scores", &p(&scores), "--run", &p(&missing)]), "cannot be used with"),
        (os(&["eval", "--weights", "w.safetensors", "--backbone", "r18", "--protocol", "view2"]), "view2:<fold>"),
        (os(&["bench", "--precision", "fp8"]), "unknown precision `fp8`"),
        (os(&["bench", "--steps", "0"]), "must be at least 1"),
        // Before: a wrapped parameter count in a release build, an overflow panic in a debug one.
        (os(&["summary", "--width", "100000000000000"]), "at most 2147483648 are supported"),
        (os(&["summary", "--input-size", "160000000000"]), "input_size must be at most 1024"),
        (os(&["train", "--config", &p(&tiny_config(tmp.path(), 1, "")), "--width", "100000", "--out", &p(&tmp.path().join("w"))]), "parameters"),
        // Before: "memory allocation of 60004200072 bytes failed", abort.
        (os(&["preview", "--lfw", &p(&lfw_mini()), "--size", "100000", "--out", &p(&tmp.path().join("p.png"))]), "at most 1024 pixels"),
    ];
    let before = snapshot(tmp.path());
    for (args, phrase) in cases {
        let out = arcface().args(&args).current_dir(tmp.path()).output().unwrap();
        let (code, err) = code_and_err(&out);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(phrase), "{args:?}: {err}");
        assert!(!err.contains("panicked") && !err.contains("memory allocation"), "{args:?}: {err}");
        assert_unchanged(&before, &format!("{args:?}"));
    }
    assert!(!tmp.path().join("p.png").exists() && !tmp.path().join("r").exists());
    // Before: "memory allocation of 1228800000000000 bytes failed", abort. bench reports each
    // failed configuration and exits non-zero.
    let out = arcface().args(["bench", "--device", "cpu", "--backbones", "r18", "--width", "8", "--input-size", "32", "--batch-size", "100000000000", "--steps", "1"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("batch size must be in 1..=65536"), "{text}");
    // embed advertises only the formats it decodes.
    let help = String::from_utf8_lossy(&arcface().args(["embed", "--help"]).output().unwrap().stdout).to_lowercase();
    assert!(!help.contains("bmp") && !help.contains("webp"), "{help}");
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

fn os(args: &[&str]) -> Vec<std::ffi::OsString> {
    args.iter().map(|a| a.into()).collect()
}
