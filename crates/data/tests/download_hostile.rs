//! Issue #17's download defects, through the library on a synthetic LFW (see `support`): a
//! `--from` that cannot be LFW says what it holds and what was expected; a corrupt archive
//! never puts raw bytes in a message; a changed extracted image is detected and repaired; a
//! failed write names its file.

mod support;

use std::path::Path;

use arcface_data::download::{
    download_lfw, download_mtcnn, DownloadError, DownloadOptions, Source,
};
use support::{has_raw_bytes, options, Behaviour, Lfw, Server};

fn lfw_options(dir: &Path, fx: &Lfw, from: Source) -> DownloadOptions {
    DownloadOptions {
        from: Some(from),
        checksums: fx.checksums(),
        ..options(dir)
    }
}

/// Deterministic noise.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

// ---------------------------------------------------------------- (a) what --from holds

#[test]
fn an_empty_folder_or_a_non_archive_from_says_what_was_found_and_what_was_expected() {
    let fx = Lfw::new();
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = tmp.path().join("out");

    let err = download_lfw(&lfw_options(&out, &fx, Source::Folder(empty.clone()))).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DownloadError::FromLacks { .. }), "{msg}");
    assert!(!msg.contains("no source for"), "{msg}");
    assert!(
        msg.contains("lacks lfw-deepfunneled.tgz, pairs.txt,") && msg.contains(": it is empty;"),
        "{msg}"
    );
    assert!(
        msg.contains("expected a folder holding lfw-deepfunneled.tgz (a gzip-compressed tar"),
        "{msg}"
    );

    // Only the protocol files: the archive is what is missing.
    let txt_only = tmp.path().join("txt");
    fx.write_folder(&txt_only);
    std::fs::remove_file(txt_only.join("lfw-deepfunneled.tgz")).unwrap();
    let err = download_lfw(&lfw_options(&out, &fx, Source::Folder(txt_only))).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("lacks lfw-deepfunneled.tgz: it holds 7 entries: lfw-names.txt, pairs.txt"),
        "{msg}"
    );

    // A file that is no archive.
    let notes = tmp.path().join("notes.txt");
    std::fs::write(&notes, b"hello\n").unwrap();
    let err = download_lfw(&lfw_options(&out, &fx, Source::Archive(notes))).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DownloadError::FromUnusable { .. }), "{msg}");
    assert!(
        msg.contains("a file of 6 bytes starting with \"hello\\n\", not a gzip-compressed archive"),
        "{msg}"
    );
    assert!(
        msg.contains("expected a folder holding lfw-deepfunneled.tgz"),
        "{msg}"
    );

    // An archive's name on a web page (a captive portal, a wrong link).
    let html = tmp.path().join("html");
    fx.write_folder_with_archive(&html, b"<!DOCTYPE html><html>Sign in</html>");
    let err = download_lfw(&lfw_options(&out, &fx, Source::Folder(html))).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DownloadError::CorruptArchive { .. }), "{msg}");
    assert!(
        msg.contains(
            "not gzip data: it starts with \"<!DOCTYPE html><...\", a .tgz starts with bytes 1f 8b"
        ),
        "{msg}"
    );
    assert!(!out.join("lfw/lfw-deepfunneled").exists());

    // MTCNN: the same for its three files.
    let err = download_mtcnn(&DownloadOptions {
        from: Some(Source::Folder(empty)),
        ..options(&out)
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("lacks pnet.pt, rnet.pt, onet.pt: it is empty"),
        "{err}"
    );
}

// ---------------------------------------------------------------- (b) no raw bytes

/// Recomputes the checksum of the tar header at the start of `tar` (POSIX: the byte sum with
/// the checksum field read as spaces).
fn fix_cksum(tar: &mut [u8]) {
    tar[148..156].copy_from_slice(b"        ");
    let sum: u32 = tar[..512].iter().map(|&b| b as u32).sum();
    tar[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

#[test]
fn a_corrupt_archive_never_puts_raw_bytes_in_the_message() {
    let fx = Lfw::new();
    // A tar header whose size field holds a terminal escape sequence (set the window title).
    let mut header_garbage = {
        let mut tarball = Vec::new();
        {
            let mut b = tar::Builder::new(&mut tarball);
            let mut h = tar::Header::new_gnu();
            h.set_path("lfw-deepfunneled/Bob/Bob_0001.jpg").unwrap();
            h.set_size(4);
            h.set_cksum();
            b.append(&h, &b"\xff\xd8xx"[..]).unwrap();
            b.finish().unwrap();
        }
        tarball
    };
    header_garbage[124..136].copy_from_slice(b"\x1b]0;pwned\x07\x01 ");
    fix_cksum(&mut header_garbage);
    let one_entry = support::tgz(|b| {
        support::append_file(b, "lfw-deepfunneled/Bob/Bob_0001.jpg", b"\xff\xd8ok");
    });
    let mut raw_tar = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&one_entry[..]),
        &mut raw_tar,
    )
    .unwrap();
    // Rename the entry to hold a terminal escape and a bidirectional override.
    let name = b"lfw-deepfunneled/\x1b[2J\xe2\x80\xaeBob.jpg";
    raw_tar[..100].fill(0);
    raw_tar[..name.len()].copy_from_slice(name);
    fix_cksum(&mut raw_tar);

    let mut flipped = fx.archive.clone();
    let mid = flipped.len() / 2;
    for b in &mut flipped[mid..mid + 200] {
        *b ^= 0xA5;
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", noise(30_000, 1)),
        ("gzip of random bytes", gzip(&noise(30_000, 2))),
        ("escape sequence in a tar header", gzip(&header_garbage)),
        ("escape sequence in an entry name", gzip(&raw_tar)),
        ("bytes flipped mid-stream", flipped),
    ];
    for (what, archive) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let path = fx.write_folder_with_archive(&src, &archive);
        let err = download_lfw(&lfw_options(
            &tmp.path().join("out"),
            &fx,
            Source::Folder(src),
        ))
        .unwrap_err();
        let msg = err.to_string();
        eprintln!("{what}: {msg}");
        assert!(!has_raw_bytes(&msg), "{what}: {msg:?}");
        assert!(msg.len() < 700, "{what}: {} chars: {msg}", msg.len());
        assert!(msg.contains(&path.display().to_string()), "{what}: {msg}");
        assert!(
            matches!(
                err,
                DownloadError::CorruptArchive { .. } | DownloadError::UnsafeEntry { .. }
            ),
            "{what}: {msg}"
        );
        assert!(
            !tmp.path().join("out/lfw/lfw-deepfunneled").exists(),
            "{what}"
        );
    }
}

// ---------------------------------------------------------------- (c) changed images

fn tamper(lfw: &Path) {
    let images = lfw.join("lfw-deepfunneled");
    // Same size, one byte different: only a hash can tell.
    let p = images.join("Carol_De_Vries/Carol_De_Vries_0002.jpg");
    let mut bytes = std::fs::read(&p).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x01;
    std::fs::write(&p, bytes).unwrap();
    // Replaced by another image of the set.
    std::fs::copy(
        images.join("Alice_Smith/Alice_Smith_0001.jpg"),
        images.join("Bob/Bob_0001.jpg"),
    )
    .unwrap();
}

fn assert_images_as_archived(lfw: &Path) {
    for (rel, data) in support::images() {
        assert_eq!(std::fs::read(lfw.join(&rel)).unwrap(), data, "{rel}");
    }
}

#[test]
fn a_changed_image_is_detected_and_repaired_by_re_extracting() {
    let fx = Lfw::new();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fx.write_folder(&src);
    let opts = lfw_options(&tmp.path().join("out"), &fx, Source::Folder(src));
    download_lfw(&opts).unwrap();
    let lfw = tmp.path().join("out/lfw");
    assert!(download_lfw(&opts).unwrap().already_complete);

    tamper(&lfw);
    let report = download_lfw(&opts).unwrap();
    assert!(
        !report.already_complete,
        "an overwritten image must not pass as verified"
    );
    assert_images_as_archived(&lfw);
    assert!(download_lfw(&opts).unwrap().already_complete);
}

#[test]
fn a_changed_image_with_no_archive_left_is_named_with_the_fix() {
    let fx = Lfw::new();
    let mut files: std::collections::HashMap<String, Vec<u8>> =
        fx.files.clone().into_iter().collect();
    files.insert("lfw-deepfunneled.tgz".into(), fx.archive.clone());
    let server = Server::start(Behaviour {
        files,
        ..Behaviour::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let opts = DownloadOptions {
        keep_archive: false,
        ..lfw_options(&out, &fx, Source::Url(server.base.clone()))
    };
    download_lfw(&opts).unwrap();
    assert!(!out.join("lfw/lfw-deepfunneled.tgz").exists());

    tamper(&out.join("lfw"));
    let offline = DownloadOptions {
        from: None,
        ..opts.clone()
    };
    let err = download_lfw(&offline).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DownloadError::Repair { .. }), "{msg}");
    assert!(
        msg.contains("2 extracted image(s) in")
            && msg.contains("differ from the archive: Bob/Bob_0001.jpg (")
            && msg.contains("Carol_De_Vries/Carol_De_Vries_0002.jpg (same size, but sha256"),
        "{msg}"
    );
    assert!(
        msg.contains("no source for lfw-deepfunneled.tgz: pass --from"),
        "{msg}"
    );

    // With a source again, the repair fetches the archive and re-extracts.
    let report = download_lfw(&opts).unwrap();
    assert!(!report.already_complete);
    assert_images_as_archived(&out.join("lfw"));
}

#[test]
fn a_marker_without_image_digests_is_upgraded_and_then_checks_images() {
    let fx = Lfw::new();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fx.write_folder(&src);
    let opts = lfw_options(&tmp.path().join("out"), &fx, Source::Folder(src));
    download_lfw(&opts).unwrap();
    let lfw = tmp.path().join("out/lfw");
    let marker = lfw.join(".download-complete.json");
    // What an earlier version wrote: format 1, no image digests.
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&marker).unwrap()).unwrap();
    assert_eq!(json["format"], 2);
    assert_eq!(json["image_digests"].as_object().unwrap().len(), 6);
    json["format"] = 1.into();
    json.as_object_mut().unwrap().remove("image_digests");
    std::fs::write(&marker, serde_json::to_vec(&json).unwrap()).unwrap();

    assert!(download_lfw(&opts).unwrap().already_complete);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&marker).unwrap()).unwrap();
    assert_eq!(json["format"], 2);
    tamper(&lfw);
    assert!(!download_lfw(&opts).unwrap().already_complete);
    assert_images_as_archived(&lfw);
}

// ---------------------------------------------------------------- (d) failed writes

/// `/dev/full` answers every write with ENOSPC: a `.part` linked to it is a full disk.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_names_the_file_being_written() {
    let fx = Lfw::new();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fx.write_folder(&src);
    let out = tmp.path().join("out");
    std::fs::create_dir_all(out.join("lfw")).unwrap();
    let part = out.join("lfw/pairs.txt.part");
    std::os::unix::fs::symlink("/dev/full", &part).unwrap();
    let err = download_lfw(&lfw_options(&out, &fx, Source::Folder(src))).unwrap_err();
    assert!(matches!(err, DownloadError::DiskFull { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!("disk full while writing {}", part.display())
    );

    let server = Server::start(Behaviour {
        files: [("pnet.pt".to_string(), vec![7u8; 5000])].into(),
        ..Behaviour::default()
    });
    let mtcnn = out.join("mtcnn");
    std::fs::create_dir_all(&mtcnn).unwrap();
    std::os::unix::fs::symlink("/dev/full", mtcnn.join("pnet.pt.part")).unwrap();
    let err = download_mtcnn(&DownloadOptions {
        mirrors: vec![server.base.clone()],
        ..options(&out)
    })
    .unwrap_err();
    assert!(err.is_out_of_space(), "{err}");
    assert!(err.to_string().contains("mtcnn/pnet.pt.part"), "{err}");
    assert!(!mtcnn.join("pnet.pt").exists());
}
