//! `download mtcnn` through the library: fake weight files with their own digests (passed in as
//! a `Dataset`) served by a local HTTP server on 127.0.0.1, and the real files of
//! `../shared/data/mtcnn` with the compiled-in SHA-256 when that folder exists.

mod support;

use std::collections::HashMap;
use std::path::Path;

use arcface_data::download::{
    download_files, download_mtcnn, mtcnn_weights, Dataset, DownloadError, KnownFile, Source,
};
use support::{dead_base, hex_sha, options, sha, shared_data, Behaviour, Server};

const NAMES: [&str; 3] = ["pnet.pt", "rnet.pt", "onet.pt"];

/// Three fake "weights" large enough to cut in the middle.
fn fakes() -> HashMap<String, Vec<u8>> {
    NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let body: Vec<u8> = (0..20_000u32 * (i as u32 + 1))
                .map(|k| (k * 31 + i as u32) as u8)
                .collect();
            (n.to_string(), body)
        })
        .collect()
}

/// The MTCNN dataset with the fakes' digests in place of the real ones.
fn fake_dataset(files: &HashMap<String, Vec<u8>>) -> Dataset {
    Dataset {
        files: NAMES
            .iter()
            .map(|n| KnownFile {
                name: n.to_string(),
                accepted: vec![sha(&files[*n])],
            })
            .collect(),
        ..Dataset::mtcnn()
    }
}

fn assert_in_place(dir: &Path, files: &HashMap<String, Vec<u8>>) {
    let w = mtcnn_weights(dir);
    for (path, name) in [
        (&w.pnet, "pnet.pt"),
        (&w.rnet, "rnet.pt"),
        (&w.onet, "onet.pt"),
    ] {
        assert_eq!(&std::fs::read(path).unwrap(), &files[name], "{name}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("mtcnn"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn good_files_are_fetched_verified_and_a_second_run_does_nothing() {
    let files = fakes();
    let server = Server::start(Behaviour {
        files: files.clone(),
        ..Behaviour::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let opts = arcface_data::download::DownloadOptions {
        from: Some(Source::Url(server.base.clone())),
        ..options(tmp.path())
    };
    let dataset = fake_dataset(&files);
    let report = download_files(&opts, &dataset).unwrap();
    assert!(!report.already_complete);
    assert_eq!(report.dir, tmp.path().join("mtcnn"));
    assert_eq!(
        report.bytes_downloaded as usize,
        files.values().map(Vec::len).sum::<usize>()
    );
    let names: Vec<&str> = report.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, NAMES);
    assert_eq!(report.files[1].digests.sha256, hex_sha(&files["rnet.pt"]));
    assert_eq!(report.files[1].origin, format!("{}rnet.pt", server.base));
    assert_in_place(tmp.path(), &files);
    assert!(mtcnn_weights(tmp.path()).exist());
    let served = server.requests().len();
    assert_eq!(served, 3);

    let again = download_files(&opts, &dataset).unwrap();
    assert!(again.already_complete);
    assert_eq!(again.bytes_downloaded, 0);
    assert_eq!(
        server.requests().len(),
        served,
        "a second run must not touch the network"
    );
}

#[test]
fn a_corrupt_file_is_an_error_naming_it_and_both_digests_and_nothing_is_left() {
    let files = fakes();
    let mut served = files.clone();
    served.get_mut("rnet.pt").unwrap()[100] ^= 0xFF;
    let server = Server::start(Behaviour {
        files: served.clone(),
        ..Behaviour::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let opts = arcface_data::download::DownloadOptions {
        from: Some(Source::Url(server.base.clone())),
        ..options(tmp.path())
    };
    let err = download_files(&opts, &fake_dataset(&files)).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, DownloadError::ChecksumMismatch { .. }),
        "{msg}"
    );
    assert!(msg.contains("rnet.pt"), "{msg}");
    assert!(
        msg.contains(&format!("expected sha256:{}", hex_sha(&files["rnet.pt"]))),
        "{msg}"
    );
    assert!(msg.contains(&hex_sha(&served["rnet.pt"])), "{msg}");
    let dir = tmp.path().join("mtcnn");
    assert!(!dir.join("rnet.pt").exists() && !dir.join("rnet.pt.part").exists());
    // The good file before it stays (it was verified); the one after was never fetched.
    assert!(dir.join("pnet.pt").is_file() && !dir.join("onet.pt").exists());
}

#[test]
fn a_partial_file_is_resumed_with_a_range_request() {
    let files = fakes();
    let server = Server::start(Behaviour {
        files: files.clone(),
        ..Behaviour::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mtcnn");
    std::fs::create_dir_all(&dir).unwrap();
    let have = 12_345;
    std::fs::write(dir.join("onet.pt.part"), &files["onet.pt"][..have]).unwrap();
    let opts = arcface_data::download::DownloadOptions {
        mirrors: vec![server.base.clone()],
        ..options(tmp.path())
    };
    let report = download_files(&opts, &fake_dataset(&files)).unwrap();
    let reqs = server.requests_for("onet.pt");
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].range.as_deref(),
        Some(format!("bytes={have}-").as_str())
    );
    assert_eq!(
        report.bytes_downloaded as usize,
        files.values().map(Vec::len).sum::<usize>() - have
    );
    assert_in_place(tmp.path(), &files);
}

#[test]
fn a_cut_transfer_is_retried_within_the_run_and_then_resumed_by_the_next() {
    let files = fakes();
    let cut = files["rnet.pt"].len() / 3;
    let server = Server::start(Behaviour {
        files: files.clone(),
        cut_first: Some(("rnet.pt".into(), cut)),
    });
    let tmp = tempfile::tempdir().unwrap();
    let opts = arcface_data::download::DownloadOptions {
        from: Some(Source::Url(server.base.clone())),
        ..options(tmp.path())
    };
    let err = download_files(&opts, &fake_dataset(&files)).unwrap_err();
    assert!(
        matches!(err, DownloadError::Interrupted { received, .. } if received as usize == cut),
        "{err}"
    );
    assert!(!tmp.path().join("mtcnn/rnet.pt").exists());
    download_files(&opts, &fake_dataset(&files)).unwrap();
    let ranges: Vec<_> = server
        .requests_for("rnet.pt")
        .into_iter()
        .map(|r| r.range)
        .collect();
    assert_eq!(ranges, [None, Some(format!("bytes={cut}-"))]);
    assert_in_place(tmp.path(), &files);

    let server = Server::start(Behaviour {
        files: files.clone(),
        cut_first: Some(("onet.pt".into(), 999)),
    });
    let tmp = tempfile::tempdir().unwrap();
    let opts = arcface_data::download::DownloadOptions {
        mirrors: vec![dead_base(), server.base.clone()],
        retries: 1,
        ..options(tmp.path())
    };
    download_files(&opts, &fake_dataset(&files)).unwrap();
    assert_eq!(server.requests_for("onet.pt").len(), 2);
    assert_in_place(tmp.path(), &files);
}

#[test]
fn a_changed_file_in_place_is_fetched_again() {
    let files = fakes();
    let server = Server::start(Behaviour {
        files: files.clone(),
        ..Behaviour::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let opts = arcface_data::download::DownloadOptions {
        from: Some(Source::Url(server.base.clone())),
        ..options(tmp.path())
    };
    download_files(&opts, &fake_dataset(&files)).unwrap();
    std::fs::write(tmp.path().join("mtcnn/pnet.pt"), b"tampered").unwrap();
    let report = download_files(&opts, &fake_dataset(&files)).unwrap();
    assert!(!report.already_complete);
    assert_eq!(server.requests_for("pnet.pt").len(), 2);
    assert_eq!(
        server.requests_for("rnet.pt").len(),
        1,
        "verified files are kept"
    );
    assert_in_place(tmp.path(), &files);
}

#[test]
fn from_a_folder_of_fake_files_is_rejected_by_the_real_checksums() {
    let files = fakes();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("fake");
    std::fs::create_dir_all(&src).unwrap();
    for (n, b) in &files {
        std::fs::write(src.join(n), b).unwrap();
    }
    let opts = arcface_data::download::DownloadOptions {
        from: Some(Source::Folder(src.clone())),
        ..options(&tmp.path().join("data"))
    };
    let err = download_mtcnn(&opts).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, DownloadError::ChecksumMismatch { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("pnet.pt")
            && msg.contains(
                "expected sha256:a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f"
            )
            && msg.contains(&hex_sha(&files["pnet.pt"])),
        "{msg}"
    );
    let dir = tmp.path().join("data/mtcnn");
    for n in NAMES {
        assert!(
            !dir.join(n).exists() && !dir.join(format!("{n}.part")).exists(),
            "{n}"
        );
    }
}

#[test]
fn from_the_shared_folder_with_the_real_checksums_and_the_licence() {
    let Some(shared) = shared_data("mtcnn") else {
        eprintln!("skipping: no ../shared/data/mtcnn");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let opts = arcface_data::download::DownloadOptions {
        from: Some(Source::Folder(shared.clone())),
        ..options(tmp.path())
    };
    let report = download_mtcnn(&opts).unwrap();
    assert!(!report.already_complete);
    assert_eq!(report.bytes_downloaded, 0);
    let w = mtcnn_weights(tmp.path());
    for (p, n) in [
        (&w.pnet, "pnet.pt"),
        (&w.rnet, "rnet.pt"),
        (&w.onet, "onet.pt"),
    ] {
        assert_eq!(
            std::fs::read(p).unwrap(),
            std::fs::read(shared.join(n)).unwrap(),
            "{n}"
        );
    }
    let licence = tmp.path().join("mtcnn/LICENSE-facenet-pytorch.md");
    assert_eq!(report.extras, std::slice::from_ref(&licence));
    assert!(std::fs::read_to_string(&licence).unwrap().contains("MIT"));
    // Copies of read-only files are ordinary, writable files.
    assert!(!std::fs::metadata(&w.pnet).unwrap().permissions().readonly());

    let again = download_mtcnn(&opts).unwrap();
    assert!(again.already_complete);
    // Without --from too: the files in place are verified by their digests alone.
    let again = download_mtcnn(&options(tmp.path())).unwrap();
    assert!(again.already_complete);
}

#[test]
fn the_real_files_over_http_with_the_real_checksums() {
    let Some(shared) = shared_data("mtcnn") else {
        eprintln!("skipping: no ../shared/data/mtcnn");
        return;
    };
    let files: HashMap<String, Vec<u8>> = NAMES
        .iter()
        .map(|n| (n.to_string(), std::fs::read(shared.join(n)).unwrap()))
        .collect();
    let server = Server::start(Behaviour {
        files: files.clone(),
        cut_first: Some(("onet.pt".into(), 500_000)),
    });
    let tmp = tempfile::tempdir().unwrap();
    let opts = arcface_data::download::DownloadOptions {
        from: Some(Source::Url(server.base.clone())),
        retries: 1,
        ..options(tmp.path())
    };
    let report = download_mtcnn(&opts).unwrap();
    assert_eq!(report.files.len(), 3);
    assert_in_place(tmp.path(), &files);
    // No licence over a URL: only a --from folder's copy is taken.
    assert!(report.extras.is_empty());
}

#[test]
fn a_from_that_cannot_hold_the_weights_says_what_it_found_and_what_was_expected() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let opts = arcface_data::download::DownloadOptions {
        from: Some(Source::Folder(empty.clone())),
        ..options(&tmp.path().join("data"))
    };
    let err = download_mtcnn(&opts).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DownloadError::FromLacks { .. }), "{msg}");
    assert!(
        msg.contains("lacks pnet.pt, rnet.pt, onet.pt: it is empty")
            && msg.contains("expected a folder holding pnet.pt, rnet.pt, onet.pt"),
        "{msg}"
    );

    std::fs::write(empty.join("pnet.pt"), b"x").unwrap();
    let err = download_mtcnn(&opts).unwrap_err().to_string();
    assert!(
        err.contains("lacks rnet.pt, onet.pt: it holds 1 entry: pnet.pt"),
        "{err}"
    );

    let file = tmp.path().join("weights.zip");
    std::fs::write(&file, b"PK\x03\x04 not a folder").unwrap();
    let opts = arcface_data::download::DownloadOptions {
        from: Some(Source::Archive(file)),
        ..options(&tmp.path().join("data"))
    };
    let err = download_mtcnn(&opts).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DownloadError::FromUnusable { .. }), "{msg}");
    assert!(
        msg.contains("a file of 17 bytes starting with bytes 50 4b 03 04"),
        "{msg}"
    );
    assert!(
        msg.contains("not a folder; expected a folder holding pnet.pt"),
        "{msg}"
    );
    assert!(!tmp.path().join("data/mtcnn").exists());
}
