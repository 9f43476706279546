//! `arcface download` end to end against hostile input (issue #17) and `download mtcnn` from
//! the shared copy: exit codes, messages, and what is left on disk. The cases that need the
//! real protocol files or weights (`../shared/data/lfw`, `../shared/data/mtcnn`) are skipped
//! without them. `ARCFACE_TEST_BIN` runs the same cases against another build of the binary
//! (how the "before" behaviour was checked).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> PathBuf {
    std::env::var_os("ARCFACE_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_arcface")))
}

fn download(args: &[&str]) -> Output {
    Command::new(bin())
        .arg("download")
        .args(args)
        .arg("--plain")
        .output()
        .unwrap()
}

/// `download` under `ulimit -f <kib>` (SIGXFSZ left at its default, as in a user's shell).
fn download_limited(kib: u32, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -f {kib}; exec \"$0\" download \"$@\" --plain"
        ))
        .arg(bin())
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn shared(name: &str) -> Option<PathBuf> {
    let rel = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name);
    [rel, Path::new("/work/shared/data").join(name)]
        .into_iter()
        .find(|p| p.is_dir())
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A control character other than a newline once the logger's own colour codes are removed,
/// or U+FFFD (undecodable bytes).
fn has_raw_bytes(text: &str) -> bool {
    let mut clean = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("\u{1b}[") {
        clean.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find(|c: char| !(c.is_ascii_digit() || c == ';')) {
            Some(j) if after[j..].starts_with('m') => rest = &after[j + 1..],
            _ => {
                clean.push('\u{1b}');
                rest = &rest[i + 1..];
            }
        }
    }
    clean.push_str(rest);
    clean
        .chars()
        .any(|c| (c.is_control() && c != '\n') || c == '\u{fffd}')
}

/// Copies the seven protocol files of the shared LFW copy into `dir`.
fn copy_protocol_files(lfw: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for e in std::fs::read_dir(lfw).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".txt") {
            std::fs::copy(e.path(), dir.join(&name)).unwrap();
        }
    }
}

#[test]
fn from_an_empty_folder_or_a_non_archive_says_what_was_found_and_what_was_expected() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = tmp.path().join("out");
    let o = download(&[
        "lfw",
        "--dir",
        s(&out),
        "--from",
        s(&empty),
        "--no-default-sources",
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(!e.contains("no source for"), "{e}");
    assert!(
        e.contains("lacks lfw-deepfunneled.tgz, pairs.txt") && e.contains("it is empty"),
        "{e}"
    );
    assert!(
        e.contains("expected a folder holding lfw-deepfunneled.tgz"),
        "{e}"
    );

    let notes = tmp.path().join("notes.txt");
    std::fs::write(&notes, "hello\n").unwrap();
    let o = download(&[
        "lfw",
        "--dir",
        s(&out),
        "--from",
        s(&notes),
        "--no-default-sources",
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("a file of 6 bytes starting with \"hello\\n\", not a gzip-compressed archive"),
        "{e}"
    );
    assert!(
        e.contains("expected a folder holding lfw-deepfunneled.tgz"),
        "{e}"
    );

    let o = download(&[
        "mtcnn",
        "--dir",
        s(&out),
        "--from",
        s(&empty),
        "--no-default-sources",
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("lacks pnet.pt, rnet.pt, onet.pt: it is empty"),
        "{e}"
    );
    let o = download(&["mtcnn", "--dir", s(&out), "--from", s(&notes)]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("not a folder; expected a folder holding pnet.pt, rnet.pt, onet.pt"),
        "{e}"
    );
    assert!(!out.exists(), "nothing may be created for a refused --from");
}

#[test]
fn a_corrupt_archive_prints_no_raw_bytes() {
    let Some(lfw) = shared("lfw") else {
        eprintln!("skipping: no ../shared/data/lfw");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    copy_protocol_files(&lfw, &src);
    // gzip of noise: the tar reader complains about header fields full of binary.
    let mut x: u64 = 7;
    let noise: Vec<u8> = (0..50_000)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect();
    std::fs::write(src.join("lfw-deepfunneled.tgz"), flate2_free_gzip(&noise)).unwrap();
    let out = tmp.path().join("out");
    let o = download(&[
        "lfw",
        "--dir",
        s(&out),
        "--from",
        s(&src),
        "--no-default-sources",
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("is truncated or corrupt"), "{e}");
    assert!(!has_raw_bytes(&e), "{e:?}");
    assert!(!has_raw_bytes(&String::from_utf8_lossy(&o.stdout)));
    assert!(!out.join("lfw/lfw-deepfunneled").exists());
}

/// A gzip member of stored (uncompressed) deflate blocks, so the test needs no gzip crate:
/// RFC 1952 header, RFC 1951 stored blocks, CRC-32 and length trailer.
fn flate2_free_gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let chunks: Vec<&[u8]> = data.chunks(65_535).collect();
    for (i, c) in chunks.iter().enumerate() {
        out.push(u8::from(i + 1 == chunks.len()));
        let n = c.len() as u16;
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(!n).to_le_bytes());
        out.extend_from_slice(c);
    }
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    out.extend_from_slice(&(!crc).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

#[test]
fn an_overwritten_image_is_not_verified_but_named_and_repaired() {
    let Some(lfw) = shared("lfw") else {
        eprintln!("skipping: no ../shared/data/lfw");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("data");
    let args = [
        "lfw",
        "--dir",
        s(&out),
        "--from",
        s(&lfw),
        "--no-default-sources",
    ];
    let o = download(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let image = out.join("lfw/lfw-deepfunneled/George_W_Bush/George_W_Bush_0001.jpg");
    let original = std::fs::read(&image).unwrap();
    let other =
        std::fs::read(out.join("lfw/lfw-deepfunneled/George_W_Bush/George_W_Bush_0002.jpg"))
            .unwrap();
    std::fs::write(&image, other).unwrap();

    let o = download(&args);
    let (stdout, e) = (String::from_utf8_lossy(&o.stdout).into_owned(), stderr(&o));
    assert!(o.status.success(), "{e}");
    assert!(!stdout.contains("nothing to do"), "{stdout}");
    assert!(
        e.contains("1 extracted image(s) in")
            && e.contains("George_W_Bush/George_W_Bush_0001.jpg ("),
        "{e}"
    );
    assert_eq!(
        std::fs::read(&image).unwrap(),
        original,
        "re-extracted from the archive"
    );
    let o = download(&args);
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing to do"));
}

#[test]
fn a_write_past_the_file_size_limit_names_the_file() {
    let Some(lfw) = shared("lfw") else {
        eprintln!("skipping: no ../shared/data/lfw");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // pairs.txt (155 kB) is the first file copied.
    let out = tmp.path().join("a");
    let o = download_limited(
        20,
        &[
            "lfw",
            "--dir",
            s(&out),
            "--from",
            s(&lfw),
            "--no-default-sources",
        ],
    );
    let e = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "killed instead of reporting? {:?} {e}",
        o.status
    );
    assert!(
        e.contains("file size limit (ulimit -f) reached while writing"),
        "{e}"
    );
    assert!(
        e.contains(&format!("{}/lfw/pairs.txt.part", out.display())),
        "{e}"
    );
    assert!(
        !out.join("lfw/pairs.txt.part").exists(),
        "a failed copy leaves no .part"
    );

    // Protocol files already in place: the first image over 8 KiB fails the extraction.
    let out = tmp.path().join("b");
    copy_protocol_files(&lfw, &out.join("lfw"));
    let o = download_limited(
        8,
        &[
            "lfw",
            "--dir",
            s(&out),
            "--from",
            s(&lfw),
            "--no-default-sources",
        ],
    );
    let e = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "killed instead of reporting? {:?} {e}",
        o.status
    );
    assert!(
        e.contains("partial extraction was removed (the archive unpacks to about")
            && e.contains("file size limit (ulimit -f) reached while writing")
            && e.contains(".jpg"),
        "{e}"
    );
    let left: Vec<String> = std::fs::read_dir(out.join("lfw"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".extract-tmp") || n == "lfw-deepfunneled")
        .collect();
    assert!(left.is_empty(), "{left:?}");

    if let Some(mtcnn) = shared("mtcnn") {
        let out = tmp.path().join("c");
        let o = download_limited(
            100,
            &[
                "mtcnn",
                "--dir",
                s(&out),
                "--from",
                s(&mtcnn),
                "--no-default-sources",
            ],
        );
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{:?} {e}", o.status);
        assert!(
            e.contains(&format!("{}/mtcnn/rnet.pt.part", out.display())),
            "{e}"
        );
        assert!(out.join("mtcnn/pnet.pt").is_file() && !out.join("mtcnn/rnet.pt").exists());
    }
}

#[test]
fn download_mtcnn_from_the_shared_folder_then_nothing_to_do() {
    let Some(mtcnn) = shared("mtcnn") else {
        eprintln!("skipping: no ../shared/data/mtcnn");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("data");
    let o = download(&[
        "mtcnn",
        "--dir",
        s(&out),
        "--from",
        s(&mtcnn),
        "--no-default-sources",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("MTCNN weights ready in") && stdout.contains("pnet.pt, rnet.pt, onet.pt"),
        "{stdout}"
    );
    for n in [
        "pnet.pt",
        "rnet.pt",
        "onet.pt",
        "LICENSE-facenet-pytorch.md",
    ] {
        assert_eq!(
            std::fs::read(out.join("mtcnn").join(n)).unwrap(),
            std::fs::read(mtcnn.join(n)).unwrap(),
            "{n}"
        );
    }
    let o = download(&["mtcnn", "--dir", s(&out), "--from", s(&mtcnn)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("already complete"));
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing to do"));
}

#[test]
fn download_help_lists_both_datasets() {
    let o = Command::new(bin())
        .args(["download", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("lfw") && text.contains("mtcnn"), "{text}");
    let o = download(&["faces"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("possible values: lfw, mtcnn"),
        "{}",
        stderr(&o)
    );
}
