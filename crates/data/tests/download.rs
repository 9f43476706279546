//! Integration tests of `arcface_data::download` against a local HTTP/1.1 server (std
//! `TcpListener`, Range support, scripted cut-offs) serving a synthetic LFW-layout archive of
//! tiny JPEGs and seven small protocol files. The synthetic files' digests are computed here
//! with `sha2` and passed in through `DownloadOptions::checksums`.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Cursor, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arcface_data::download::{
    download_lfw, ArchiveVerification, Checksum, DownloadError, DownloadOptions, KnownChecksums,
    Source, PROTOCOL_FILES,
};
use arcface_data::Progress;
use sha2::{Digest, Sha256};

const PEOPLE: [(&str, u32); 3] = [("Alice_Smith", 2), ("Bob", 1), ("Carol_De_Vries", 3)];

fn jpeg(seed: u32) -> Vec<u8> {
    // Noise keeps the archive large enough to cut in the middle.
    let img = image::RgbImage::from_fn(48, 48, |x, y| {
        let v = (x.wrapping_mul(2654435761) ^ y.wrapping_mul(40503) ^ seed.wrapping_mul(97))
            .wrapping_mul(2246822519);
        image::Rgb([(v >> 8) as u8, (v >> 16) as u8, (v >> 24) as u8])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Jpeg)
        .unwrap();
    out
}

/// The images of the synthetic tree, by relative path.
fn images() -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut seed = 0;
    for (name, count) in PEOPLE {
        for i in 1..=count {
            seed += 1;
            out.insert(
                format!("lfw-deepfunneled/{name}/{name}_{i:04}.jpg"),
                jpeg(seed),
            );
        }
    }
    out
}

fn tgz(build: impl FnOnce(&mut tar::Builder<flate2::write::GzEncoder<Vec<u8>>>)) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    build(&mut b);
    b.into_inner().unwrap().finish().unwrap()
}

fn append_file(b: &mut tar::Builder<flate2::write::GzEncoder<Vec<u8>>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).unwrap();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn good_archive() -> Vec<u8> {
    tgz(|b| {
        let mut h = tar::Header::new_gnu();
        h.set_path("lfw-deepfunneled/").unwrap();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
        for (path, data) in images() {
            append_file(b, &path, &data);
        }
    })
}

fn protocol_files() -> BTreeMap<String, Vec<u8>> {
    let names: String = PEOPLE.iter().map(|(n, c)| format!("{n}\t{c}\n")).collect();
    let mut m = BTreeMap::new();
    m.insert(
        "pairs.txt".into(),
        b"1\t1\nAlice_Smith\t1\t2\nBob\t1\tCarol_De_Vries\t2\n".to_vec(),
    );
    m.insert("people.txt".into(), format!("1\n3\n{names}").into_bytes());
    m.insert(
        "pairsDevTrain.txt".into(),
        b"1\nCarol_De_Vries\t1\t3\nAlice_Smith\t2\tBob\t1\n".to_vec(),
    );
    m.insert(
        "pairsDevTest.txt".into(),
        b"1\nAlice_Smith\t1\t2\nBob\t1\tAlice_Smith\t1\n".to_vec(),
    );
    m.insert(
        "peopleDevTrain.txt".into(),
        b"2\nAlice_Smith\t2\nBob\t1\n".to_vec(),
    );
    m.insert(
        "peopleDevTest.txt".into(),
        b"1\nCarol_De_Vries\t3\n".to_vec(),
    );
    m.insert("lfw-names.txt".into(), names.into_bytes());
    m
}

fn sha(bytes: &[u8]) -> Checksum {
    Checksum::Sha256(hex::encode(Sha256::digest(bytes)))
}

fn checksums_for(files: &BTreeMap<String, Vec<u8>>, archive: &[u8]) -> KnownChecksums {
    KnownChecksums {
        archive: vec![sha(archive)],
        files: files
            .iter()
            .map(|(n, b)| (n.clone(), vec![sha(b)]))
            .collect(),
    }
}

fn options(dir: &Path, checksums: KnownChecksums) -> DownloadOptions {
    DownloadOptions {
        default_sources: false,
        progress: Progress::Silent,
        checksums,
        retries: 0,
        retry_delay: Duration::ZERO,
        timeout: Duration::from_secs(10),
        ..DownloadOptions::new(dir)
    }
}

// ---------------------------------------------------------------- test server

#[derive(Debug, Clone)]
struct Request {
    path: String,
    range: Option<String>,
}

#[derive(Default)]
struct Behaviour {
    files: HashMap<String, Vec<u8>>,
    /// (path, bytes): the first request for `path` sends the full length header, then only
    /// `bytes` bytes, then closes.
    cut_first: Option<(String, usize)>,
    ignore_range: bool,
}

struct Server {
    base: String,
    log: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    fn start(behaviour: Behaviour) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/lfw/", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(Mutex::new(behaviour));
        let log2 = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, state) = (log2.clone(), state.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &log, &state);
                });
            }
        });
        Server { base, log }
    }

    fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    fn requests_for(&self, name: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.ends_with(&format!("/{name}")))
            .collect()
    }
}

fn serve(
    stream: TcpStream,
    log: &Mutex<Vec<Request>>,
    state: &Mutex<Behaviour>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    log.lock().unwrap().push(Request {
        path: path.clone(),
        range: range.clone(),
    });
    let name = path.rsplit('/').next().unwrap_or("").to_string();
    let (body, cut, ignore_range) = {
        let mut st = state.lock().unwrap();
        let cut = match &st.cut_first {
            Some((p, n)) if *p == name => Some(*n),
            _ => None,
        };
        if cut.is_some() {
            st.cut_first = None;
        }
        (st.files.get(&name).cloned(), cut, st.ignore_range)
    };
    let mut out = stream;
    let Some(body) = body else {
        return out.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    };
    let start = range
        .as_deref()
        .filter(|_| !ignore_range)
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|s| s.parse::<usize>().ok());
    let (status, from) = match start {
        Some(s) if s >= body.len() => return out.write_all(
            b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ),
        Some(s) => (
            format!(
                "206 Partial Content\r\nContent-Range: bytes {s}-{}/{}",
                body.len() - 1,
                body.len()
            ),
            s,
        ),
        None => ("200 OK".to_string(), 0),
    };
    let payload = &body[from..];
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        payload.len()
    )?;
    let n = cut.unwrap_or(payload.len()).min(payload.len());
    out.write_all(&payload[..n])?;
    out.flush()?;
    out.shutdown(std::net::Shutdown::Both)
}

struct Fixture {
    files: BTreeMap<String, Vec<u8>>,
    archive: Vec<u8>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            files: protocol_files(),
            archive: good_archive(),
        }
    }

    fn checksums(&self) -> KnownChecksums {
        checksums_for(&self.files, &self.archive)
    }

    fn behaviour(&self) -> Behaviour {
        let mut files: HashMap<String, Vec<u8>> = self.files.clone().into_iter().collect();
        files.insert("lfw-deepfunneled.tgz".into(), self.archive.clone());
        Behaviour {
            files,
            ..Behaviour::default()
        }
    }

    /// Writes the archive and the txt files into `dir`, like ../shared/data/lfw.
    fn write_folder(&self, dir: &Path, with_txt: bool) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let archive = dir.join("lfw-deepfunneled.tgz");
        std::fs::write(&archive, &self.archive).unwrap();
        if with_txt {
            for (n, b) in &self.files {
                std::fs::write(dir.join(n), b).unwrap();
            }
        }
        archive
    }
}

fn assert_complete_tree(lfw: &Path, fx: &Fixture) {
    for (rel, data) in images() {
        assert_eq!(&std::fs::read(lfw.join(&rel)).unwrap(), &data, "{rel}");
    }
    for (n, b) in &fx.files {
        assert_eq!(&std::fs::read(lfw.join(n)).unwrap(), b, "{n}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(lfw)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part") || n.starts_with(".extract-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn assert_nothing_extracted(lfw: &Path) {
    assert!(!lfw.join("lfw-deepfunneled").exists());
    if let Ok(rd) = std::fs::read_dir(lfw) {
        for e in rd.flatten() {
            assert!(
                !e.file_name().to_string_lossy().starts_with(".extract-tmp"),
                "{:?}",
                e.path()
            );
        }
    }
}

// ---------------------------------------------------------------- tests

#[test]
fn full_download_extracts_and_second_run_is_a_no_op() {
    let fx = Fixture::new();
    let server = Server::start(fx.behaviour());
    let tmp = tempfile::tempdir().unwrap();
    let opts = DownloadOptions {
        from: Some(Source::Url(server.base.clone())),
        ..options(tmp.path(), fx.checksums())
    };
    let report = download_lfw(&opts).unwrap();
    assert!(!report.already_complete);
    assert_eq!((report.identities, report.images), (3, 6));
    assert_eq!(report.files.len(), 7);
    assert_eq!(
        report.bytes_downloaded as usize,
        fx.archive.len() + fx.files.values().map(Vec::len).sum::<usize>()
    );
    assert_eq!(
        report.archive.verified_by,
        ArchiveVerification::Checksum(sha(&fx.archive))
    );
    assert_eq!(
        report.archive.origin,
        format!("{}lfw-deepfunneled.tgz", server.base)
    );
    let lfw = tmp.path().join("lfw");
    assert_complete_tree(&lfw, &fx);
    assert!(lfw.join(".download-complete.json").is_file());
    let served = server.requests().len();
    assert_eq!(served, 8);

    let again = download_lfw(&opts).unwrap();
    assert!(again.already_complete);
    assert_eq!(
        (again.identities, again.images, again.bytes_downloaded),
        (3, 6, 0)
    );
    assert_eq!(
        server.requests().len(),
        served,
        "the second run must not touch the network"
    );
}

#[test]
fn a_changed_file_makes_the_next_run_redo_the_work() {
    let fx = Fixture::new();
    let server = Server::start(fx.behaviour());
    let tmp = tempfile::tempdir().unwrap();
    let opts = DownloadOptions {
        mirrors: vec![server.base.clone()],
        ..options(tmp.path(), fx.checksums())
    };
    download_lfw(&opts).unwrap();
    let lfw = tmp.path().join("lfw");
    std::fs::write(lfw.join("pairs.txt"), b"tampered").unwrap();
    std::fs::remove_file(lfw.join("lfw-deepfunneled/Bob/Bob_0001.jpg")).unwrap();
    let report = download_lfw(&opts).unwrap();
    assert!(!report.already_complete);
    assert_complete_tree(&lfw, &fx);
    // pairs.txt was fetched again; the kept archive was reused, not downloaded again.
    assert_eq!(server.requests_for("pairs.txt").len(), 2);
    assert_eq!(server.requests_for("lfw-deepfunneled.tgz").len(), 1);
}

#[test]
fn a_cut_download_resumes_with_a_range_request_on_the_next_run() {
    let fx = Fixture::new();
    let cut = fx.archive.len() / 2;
    let server = Server::start(Behaviour {
        cut_first: Some(("lfw-deepfunneled.tgz".into(), cut)),
        ..fx.behaviour()
    });
    let tmp = tempfile::tempdir().unwrap();
    let opts = DownloadOptions {
        from: Some(Source::Url(server.base.clone())),
        ..options(tmp.path(), fx.checksums())
    };
    let err = download_lfw(&opts).unwrap_err();
    assert!(
        matches!(err, DownloadError::Interrupted { received, .. } if received as usize == cut),
        "{err}"
    );
    let part = tmp.path().join("lfw/lfw-deepfunneled.tgz.part");
    assert_eq!(std::fs::metadata(&part).unwrap().len() as usize, cut);
    assert_nothing_extracted(&tmp.path().join("lfw"));

    let report = download_lfw(&opts).unwrap();
    assert_eq!(report.images, 6);
    let reqs = server.requests_for("lfw-deepfunneled.tgz");
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].range, None);
    assert_eq!(
        reqs[1].range.as_deref(),
        Some(format!("bytes={cut}-").as_str())
    );
    assert_eq!(
        report.bytes_downloaded as usize,
        fx.archive.len() - cut,
        "only the missing tail is fetched"
    );
    assert_complete_tree(&tmp.path().join("lfw"), &fx);
}

#[test]
fn a_cut_download_is_retried_within_the_same_run() {
    let fx = Fixture::new();
    let cut = fx.archive.len() / 3;
    let server = Server::start(Behaviour {
        cut_first: Some(("lfw-deepfunneled.tgz".into(), cut)),
        ..fx.behaviour()
    });
    let tmp = tempfile::tempdir().unwrap();
    let opts = DownloadOptions {
        mirrors: vec![server.base.clone()],
        retries: 2,
        ..options(tmp.path(), fx.checksums())
    };
    download_lfw(&opts).unwrap();
    let reqs = server.requests_for("lfw-deepfunneled.tgz");
    assert_eq!(
        reqs.iter().map(|r| r.range.clone()).collect::<Vec<_>>(),
        [None, Some(format!("bytes={cut}-"))]
    );
    assert_complete_tree(&tmp.path().join("lfw"), &fx);
}

#[test]
fn a_server_that_ignores_range_makes_the_download_restart() {
    let fx = Fixture::new();
    let server = Server::start(Behaviour {
        ignore_range: true,
        ..fx.behaviour()
    });
    let tmp = tempfile::tempdir().unwrap();
    let lfw = tmp.path().join("lfw");
    std::fs::create_dir_all(&lfw).unwrap();
    // A stale prefix that is not the archive's: appending to it would corrupt the file.
    std::fs::write(lfw.join("lfw-deepfunneled.tgz.part"), vec![0xAB; 100]).unwrap();
    let opts = DownloadOptions {
        from: Some(Source::Url(server.base.clone())),
        ..options(tmp.path(), fx.checksums())
    };
    let report = download_lfw(&opts).unwrap();
    assert_eq!(
        report.archive.verified_by,
        ArchiveVerification::Checksum(sha(&fx.archive))
    );
    let reqs = server.requests_for("lfw-deepfunneled.tgz");
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].range.as_deref(), Some("bytes=100-"));
    assert_complete_tree(&lfw, &fx);
}

#[test]
fn a_protocol_file_with_a_wrong_checksum_is_an_error() {
    let fx = Fixture::new();
    let server = Server::start(fx.behaviour());
    let tmp = tempfile::tempdir().unwrap();
    let mut sums = fx.checksums();
    let wrong = "0123456789abcdef0123456789abcdef";
    sums.files
        .insert("people.txt".into(), vec![Checksum::Md5(wrong.into())]);
    let opts = DownloadOptions {
        from: Some(Source::Url(server.base.clone())),
        ..options(tmp.path(), sums)
    };
    let err = download_lfw(&opts).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, DownloadError::ChecksumMismatch { .. }),
        "{msg}"
    );
    let got = format!("{:x}", md5::Md5::digest(&fx.files["people.txt"]));
    assert!(
        msg.contains(&format!("expected md5:{wrong}")) && msg.contains(&format!("got md5:{got}")),
        "{msg}"
    );
    assert!(!tmp.path().join("lfw/people.txt").exists());
    assert!(!tmp.path().join("lfw/people.txt.part").exists());
}

#[test]
fn connection_refused_names_the_url() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let tmp = tempfile::tempdir().unwrap();
    let base = format!("http://127.0.0.1:{port}/lfw/");
    let opts = DownloadOptions {
        from: Some(Source::Url(base.clone())),
        ..options(tmp.path(), KnownChecksums::default())
    };
    let err = download_lfw(&opts).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, DownloadError::Network { .. }) && err.is_network(),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("cannot reach {base}pairs.txt")),
        "{msg}"
    );
    assert!(
        msg.to_lowercase().contains("refused") || msg.contains("Connection Failed"),
        "{msg}"
    );
}

#[test]
fn http_errors_and_multiple_failed_sources_are_all_reported() {
    let fx = Fixture::new();
    let mut b = fx.behaviour();
    b.files.remove("pairs.txt");
    let server = Server::start(b);
    let tmp = tempfile::tempdir().unwrap();
    let opts = DownloadOptions {
        from: Some(Source::Url(server.base.clone())),
        ..options(tmp.path(), fx.checksums())
    };
    let err = download_lfw(&opts).unwrap_err();
    assert!(
        matches!(err, DownloadError::HttpStatus { status: 404, .. }),
        "{err}"
    );

    let dead = "http://127.0.0.1:1/x/".to_string();
    let opts = DownloadOptions {
        mirrors: vec![dead, server.base.clone()],
        ..opts
    };
    let err = download_lfw(&opts).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, DownloadError::AllSourcesFailed { attempts, .. } if attempts.len() == 2),
        "{msg}"
    );
    assert!(
        msg.contains("http://127.0.0.1:1/x/pairs.txt") && msg.contains("HTTP 404"),
        "{msg}"
    );
}

#[test]
fn a_truncated_or_corrupt_archive_is_an_error_and_nothing_is_kept() {
    let fx = Fixture::new();
    let mut corrupt = fx.archive.clone();
    let mid = corrupt.len() / 2;
    for b in &mut corrupt[mid..mid + 64] {
        *b ^= 0x5A;
    }
    let truncated = fx.archive[..fx.archive.len() * 2 / 3].to_vec();
    for (what, archive) in [("truncated", truncated), ("corrupt", corrupt)] {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let path = Fixture {
            files: fx.files.clone(),
            archive,
        }
        .write_folder(&src, true);
        let opts = DownloadOptions {
            from: Some(Source::Folder(src.clone())),
            ..options(&tmp.path().join("out"), fx.checksums())
        };
        let err = download_lfw(&opts).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, DownloadError::CorruptArchive { .. }),
            "{what}: {msg}"
        );
        assert!(msg.contains(&path.display().to_string()), "{what}: {msg}");
        assert_nothing_extracted(&tmp.path().join("out/lfw"));
        assert!(!tmp.path().join("out/lfw/.download-complete.json").exists());
    }
}

/// A tar entry with a raw name (and link name), bypassing `tar`'s own path checks.
fn raw_entry(
    name: &str,
    kind: tar::EntryType,
    link: Option<&str>,
    data: &[u8],
) -> (tar::Header, Vec<u8>) {
    let mut h = tar::Header::new_old();
    let old = h.as_old_mut();
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    if let Some(l) = link {
        old.linkname[..l.len()].copy_from_slice(l.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_cksum();
    (h, data.to_vec())
}

#[test]
fn malicious_entries_are_refused_before_anything_is_kept() {
    let fx = Fixture::new();
    let cases = [
        ("../evil", tar::EntryType::Regular, None, "`..`"),
        (
            "lfw-deepfunneled/../../evil",
            tar::EntryType::Regular,
            None,
            "`..`",
        ),
        (
            "/tmp/arcface-download-test-evil",
            tar::EntryType::Regular,
            None,
            "absolute",
        ),
        (
            "lfw-deepfunneled/Bob/etc",
            tar::EntryType::Symlink,
            Some("/etc"),
            "symbolic link",
        ),
        (
            "lfw-deepfunneled/Bob/up",
            tar::EntryType::Symlink,
            Some("../.."),
            "symbolic link",
        ),
        (
            "lfw-deepfunneled/Bob/passwd",
            tar::EntryType::Link,
            Some("/etc/passwd"),
            "hard link",
        ),
        (
            "lfw-deepfunneled/Bob/fifo",
            tar::EntryType::Fifo,
            None,
            "not a regular file",
        ),
        (
            "lfw-deepfunneled/Bob/dev",
            tar::EntryType::Char,
            None,
            "not a regular file",
        ),
    ];
    for (name, kind, link, why) in cases {
        let archive = tgz(|b| {
            for (path, data) in images() {
                append_file(b, &path, &data);
            }
            let (h, data) = raw_entry(name, kind, link, b"evil");
            b.append(&h, &data[..]).unwrap();
        });
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let path = Fixture {
            files: fx.files.clone(),
            archive,
        }
        .write_folder(&src, true);
        let out = tmp.path().join("out");
        let opts = DownloadOptions {
            from: Some(Source::Archive(path)),
            ..options(&out, fx.checksums())
        };
        let err = download_lfw(&opts).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, DownloadError::UnsafeEntry { .. }),
            "{name}: {msg}"
        );
        assert!(msg.contains(why) && msg.contains(name), "{name}: {msg}");
        assert_nothing_extracted(&out.join("lfw"));
        assert!(!out.join("evil").exists() && !tmp.path().join("evil").exists());
        assert!(!Path::new("/tmp/arcface-download-test-evil").exists());
    }
}

#[test]
fn from_folder_works_without_network() {
    let fx = Fixture::new();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("shared");
    fx.write_folder(&src, true);
    let opts = DownloadOptions {
        from: Some(Source::Folder(src.clone())),
        ..options(&tmp.path().join("data"), fx.checksums())
    };
    let report = download_lfw(&opts).unwrap();
    assert_eq!(report.images, 6);
    assert_eq!(report.bytes_downloaded, 0);
    assert!(report
        .files
        .iter()
        .all(|f| f.origin.starts_with(&src.display().to_string())));
    assert_complete_tree(&tmp.path().join("data/lfw"), &fx);
    // The local archive is used in place, not copied.
    assert!(!tmp.path().join("data/lfw/lfw-deepfunneled.tgz").exists());
    assert!(download_lfw(&opts).unwrap().already_complete);
}

#[test]
fn from_archive_takes_txt_from_beside_it_or_from_the_mirrors() {
    let fx = Fixture::new();
    let tmp = tempfile::tempdir().unwrap();
    let archive = fx.write_folder(&tmp.path().join("beside"), true);
    let opts = DownloadOptions {
        from: Some(Source::Archive(archive)),
        ..options(&tmp.path().join("a"), fx.checksums())
    };
    assert_eq!(download_lfw(&opts).unwrap().images, 6);
    assert_complete_tree(&tmp.path().join("a/lfw"), &fx);

    let lonely = fx.write_folder(&tmp.path().join("lonely"), false);
    let server = Server::start(fx.behaviour());
    let opts = DownloadOptions {
        from: Some(Source::Archive(lonely.clone())),
        mirrors: vec![server.base.clone()],
        ..options(&tmp.path().join("b"), fx.checksums())
    };
    let report = download_lfw(&opts).unwrap();
    assert_eq!(report.archive.origin, lonely.display().to_string());
    assert!(report
        .files
        .iter()
        .all(|f| f.origin.starts_with(&server.base)));
    assert!(server.requests_for("lfw-deepfunneled.tgz").is_empty());
    assert_complete_tree(&tmp.path().join("b/lfw"), &fx);
}

#[test]
fn an_unknown_archive_is_accepted_only_when_its_contents_match_the_names_file() {
    let fx = Fixture::new();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fx.write_folder(&src, true);
    let mut sums = fx.checksums();
    sums.archive = vec![Checksum::Md5("68331da3eb755a505a502b5aacb3c201".into())];
    let opts = DownloadOptions {
        from: Some(Source::Folder(src.clone())),
        ..options(&tmp.path().join("ok"), sums.clone())
    };
    let report = download_lfw(&opts).unwrap();
    assert_eq!(report.archive.verified_by, ArchiveVerification::Contents);
    assert_eq!(
        report.archive.digests.sha256,
        match sha(&fx.archive) {
            Checksum::Sha256(h) => h,
            _ => unreachable!(),
        }
    );

    // Same archive, but the names file announces an image it lacks.
    let mut files = fx.files.clone();
    files.insert(
        "lfw-names.txt".into(),
        b"Alice_Smith\t2\nBob\t2\nCarol_De_Vries\t3\n".to_vec(),
    );
    let bad = Fixture {
        files,
        archive: fx.archive.clone(),
    };
    let src = tmp.path().join("src2");
    bad.write_folder(&src, true);
    let opts = DownloadOptions {
        from: Some(Source::Folder(src)),
        ..options(
            &tmp.path().join("bad"),
            checksums_for(&bad.files, b"not this archive"),
        )
    };
    let err = download_lfw(&opts).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, DownloadError::ContentMismatch { .. }),
        "{msg}"
    );
    assert!(msg.contains("Bob/Bob_0002.jpg is missing"), "{msg}");
    assert_nothing_extracted(&tmp.path().join("bad/lfw"));
}

#[test]
fn a_missing_from_path_is_an_options_error() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = DownloadOptions {
        from: Some(Source::Folder(tmp.path().join("nope"))),
        ..options(tmp.path(), KnownChecksums::default())
    };
    assert!(matches!(
        download_lfw(&opts),
        Err(DownloadError::Options(_))
    ));
}

/// The real data: `--from ../shared/data/lfw` with the default (real) checksums.
#[test]
fn real_lfw_from_the_shared_folder() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/lfw");
    let shared = if shared.is_dir() {
        shared
    } else {
        PathBuf::from("/work/shared/data/lfw")
    };
    if !shared.join("lfw-deepfunneled.tgz").is_file() {
        eprintln!("skipping: no LFW copy at {}", shared.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let opts = DownloadOptions {
        from: Some(Source::Folder(shared.clone())),
        default_sources: false,
        progress: Progress::Silent,
        ..DownloadOptions::new(tmp.path())
    };
    let report = download_lfw(&opts).unwrap();
    assert_eq!((report.images, report.identities), (13233, 5749));
    assert!(matches!(
        report.archive.verified_by,
        ArchiveVerification::Checksum(Checksum::Sha256(_))
    ));
    for name in PROTOCOL_FILES {
        assert!(tmp.path().join("lfw").join(name).is_file(), "{name}");
    }
    let jpgs = walk_count(&tmp.path().join("lfw/lfw-deepfunneled"));
    assert_eq!(jpgs, 13233);
    let again = download_lfw(&opts).unwrap();
    assert!(again.already_complete);
    assert_eq!(again.images, 13233);
}

fn walk_count(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            n += walk_count(&p);
        } else if p.extension().is_some_and(|x| x == "jpg") {
            n += 1;
        }
    }
    n
}
