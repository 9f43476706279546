//! Test support for the download tests of `download_mtcnn.rs` and `download_hostile.rs`: a
//! local HTTP/1.1 server on 127.0.0.1 (std `TcpListener`, Range support, scripted cut-offs,
//! a request log) and a synthetic LFW-layout fixture (tiny noise JPEGs in a `.tgz`, seven small
//! protocol files, their SHA-256 as `KnownChecksums`). Same design as `tests/download.rs`.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Cursor, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arcface_data::download::{Checksum, DownloadOptions, KnownChecksums};
use arcface_data::Progress;
use sha2::{Digest, Sha256};

/// Options for tests: no default sources, silent, no retries, short timeout.
pub fn options(dir: &Path) -> DownloadOptions {
    DownloadOptions {
        default_sources: false,
        progress: Progress::Silent,
        retries: 0,
        retry_delay: Duration::ZERO,
        timeout: Duration::from_secs(10),
        ..DownloadOptions::new(dir)
    }
}

/// The SHA-256 of `bytes` as an accepted checksum.
pub fn sha(bytes: &[u8]) -> Checksum {
    Checksum::Sha256(hex_sha(bytes))
}

/// The SHA-256 of `bytes`, lower-case hex.
pub fn hex_sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The shared data folder `../shared/data/<name>` when it exists.
pub fn shared_data(name: &str) -> Option<PathBuf> {
    let rel = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name);
    [rel, Path::new("/work/shared/data").join(name)]
        .into_iter()
        .find(|p| p.is_dir())
}

// ---------------------------------------------------------------- server

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Request {
    /// The request path.
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
}

/// What the server serves and how.
#[derive(Default)]
pub struct Behaviour {
    /// Bodies by file name (the last path segment).
    pub files: HashMap<String, Vec<u8>>,
    /// (name, bytes): the first request for `name` announces the full length, sends only
    /// `bytes` bytes, then closes.
    pub cut_first: Option<(String, usize)>,
}

/// A server on 127.0.0.1 serving `Behaviour::files` under `/<anything>/<name>`.
pub struct Server {
    /// `http://127.0.0.1:<port>/d/`.
    pub base: String,
    log: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    /// Starts serving on a free port.
    pub fn start(behaviour: Behaviour) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/d/", listener.local_addr().unwrap());
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

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    /// The requests for one file name.
    pub fn requests_for(&self, name: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.ends_with(&format!("/{name}")))
            .collect()
    }
}

/// A base URL where nothing listens.
pub fn dead_base() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/d/")
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
    let (body, cut) = {
        let mut st = state.lock().unwrap();
        let cut = match &st.cut_first {
            Some((p, n)) if *p == name => Some(*n),
            _ => None,
        };
        if cut.is_some() {
            st.cut_first = None;
        }
        (st.files.get(&name).cloned(), cut)
    };
    let mut out = stream;
    let Some(body) = body else {
        return out.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    };
    let start = range
        .as_deref()
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

// ---------------------------------------------------------------- synthetic LFW

/// People of the synthetic LFW.
pub const PEOPLE: [(&str, u32); 3] = [("Alice_Smith", 2), ("Bob", 1), ("Carol_De_Vries", 3)];

fn jpeg(seed: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(32, 32, |x, y| {
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

/// The images, by path inside the archive (`lfw-deepfunneled/<Name>/<Name>_NNNN.jpg`).
pub fn images() -> BTreeMap<String, Vec<u8>> {
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

/// A gzip-compressed tar built by `build`.
pub fn tgz(build: impl FnOnce(&mut tar::Builder<flate2::write::GzEncoder<Vec<u8>>>)) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    build(&mut b);
    b.into_inner().unwrap().finish().unwrap()
}

/// Appends a regular file.
pub fn append_file(
    b: &mut tar::Builder<flate2::write::GzEncoder<Vec<u8>>>,
    path: &str,
    data: &[u8],
) {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).unwrap();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

/// The synthetic LFW: archive, protocol files, and their digests.
pub struct Lfw {
    /// Protocol files by name.
    pub files: BTreeMap<String, Vec<u8>>,
    /// The archive.
    pub archive: Vec<u8>,
}

impl Lfw {
    /// The good fixture.
    pub fn new() -> Lfw {
        let names: String = PEOPLE.iter().map(|(n, c)| format!("{n}\t{c}\n")).collect();
        let mut files = BTreeMap::new();
        files.insert(
            "pairs.txt".into(),
            b"1\t1\nAlice_Smith\t1\t2\nBob\t1\tCarol_De_Vries\t2\n".to_vec(),
        );
        files.insert("people.txt".into(), format!("1\n3\n{names}").into_bytes());
        files.insert(
            "pairsDevTrain.txt".into(),
            b"1\nCarol_De_Vries\t1\t3\nAlice_Smith\t2\tBob\t1\n".to_vec(),
        );
        files.insert(
            "pairsDevTest.txt".into(),
            b"1\nAlice_Smith\t1\t2\nBob\t1\tAlice_Smith\t1\n".to_vec(),
        );
        files.insert(
            "peopleDevTrain.txt".into(),
            b"2\nAlice_Smith\t2\nBob\t1\n".to_vec(),
        );
        files.insert(
            "peopleDevTest.txt".into(),
            b"1\nCarol_De_Vries\t3\n".to_vec(),
        );
        files.insert("lfw-names.txt".into(), names.into_bytes());
        let archive = tgz(|b| {
            for (path, data) in images() {
                append_file(b, &path, &data);
            }
        });
        Lfw { files, archive }
    }

    /// The digests that accept this fixture.
    pub fn checksums(&self) -> KnownChecksums {
        KnownChecksums {
            archive: vec![sha(&self.archive)],
            files: self
                .files
                .iter()
                .map(|(n, b)| (n.clone(), vec![sha(b)]))
                .collect(),
        }
    }

    /// Writes the archive (as `lfw-deepfunneled.tgz`) and the protocol files into `dir`.
    pub fn write_folder(&self, dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let archive = dir.join("lfw-deepfunneled.tgz");
        std::fs::write(&archive, &self.archive).unwrap();
        for (n, b) in &self.files {
            std::fs::write(dir.join(n), b).unwrap();
        }
        archive
    }

    /// Writes the protocol files and `archive` in place of the good one into `dir`.
    pub fn write_folder_with_archive(&self, dir: &Path, archive: &[u8]) -> PathBuf {
        let path = self.write_folder(dir);
        std::fs::write(&path, archive).unwrap();
        path
    }
}

/// Whether `s` holds a character that must never reach a terminal raw: a control character
/// other than a newline (after removing the ANSI colour codes the logger itself writes), or
/// U+FFFD (bytes that were not text).
pub fn has_raw_bytes(s: &str) -> bool {
    let mut clean = String::new();
    let mut rest = s;
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
