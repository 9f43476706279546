//! Where each file can come from, in the order tried: the copy already in place, `--from`,
//! the mirrors, then the dataset's [`DefaultSources`].
//!
//! LFW's defaults: the official LFW site (https, then http) for every file, then the figshare
//! copies that scikit-learn downloads for `pairs.txt`, `pairsDevTrain.txt` and
//! `pairsDevTest.txt` (`ndownloader.figshare.com/files/5976006`, `.../5976012`,
//! `.../5976009`; their SHA-256 in scikit-learn equal ours). No public copy of the
//! deep-funneled `.tgz` itself was found referenced besides the LFW site; other hosts serve
//! other variants (figshare: the funneled and original archives; archive.org: a zip), so they
//! are not listed. MTCNN's defaults: the `data/` folder of facenet-pytorch's repository
//! (timesler/facenet-pytorch on GitHub), raw.githubusercontent.com first, then github.com's
//! `raw/` redirect. Users add theirs with `mirrors` (base URLs serving the same file names) or
//! `from`.

use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The official LFW site's base URLs.
pub const OFFICIAL_BASE_URLS: [&str; 2] = [
    "https://vis-www.cs.umass.edu/lfw/",
    "http://vis-www.cs.umass.edu/lfw/",
];

/// Per-file public copies (file name, URL), as referenced by scikit-learn's LFW loader.
pub const FILE_MIRRORS: [(&str, &str); 3] = [
    (
        "pairs.txt",
        "https://ndownloader.figshare.com/files/5976006",
    ),
    (
        "pairsDevTrain.txt",
        "https://ndownloader.figshare.com/files/5976012",
    ),
    (
        "pairsDevTest.txt",
        "https://ndownloader.figshare.com/files/5976009",
    ),
];

/// facenet-pytorch's `data/` folder, where `pnet.pt`, `rnet.pt` and `onet.pt` are published.
pub const MTCNN_BASE_URLS: [&str; 2] = [
    "https://raw.githubusercontent.com/timesler/facenet-pytorch/master/data/",
    "https://github.com/timesler/facenet-pytorch/raw/master/data/",
];

/// A dataset's built-in sources, tried after `--from` and the mirrors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DefaultSources {
    /// Base URLs serving every file by name.
    pub base_urls: Vec<String>,
    /// Copies of single files elsewhere: (file name, URL).
    pub file_urls: Vec<(String, String)>,
}

impl DefaultSources {
    /// The official LFW site, then the figshare copies of three protocol files.
    pub fn lfw() -> Self {
        DefaultSources {
            base_urls: OFFICIAL_BASE_URLS.iter().map(|s| s.to_string()).collect(),
            file_urls: FILE_MIRRORS
                .iter()
                .map(|(n, u)| (n.to_string(), u.to_string()))
                .collect(),
        }
    }

    /// facenet-pytorch's repository.
    pub fn mtcnn() -> Self {
        DefaultSources {
            base_urls: MTCNN_BASE_URLS.iter().map(|s| s.to_string()).collect(),
            file_urls: Vec::new(),
        }
    }
}

/// What `--from` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A local folder holding the dataset's files (for LFW: `lfw-deepfunneled.tgz` and the
    /// protocol files).
    Folder(PathBuf),
    /// A local file: LFW's archive, with the protocol files taken from beside it when present.
    Archive(PathBuf),
    /// A base URL serving the dataset's file names.
    Url(String),
}

impl FromStr for Source {
    type Err = std::convert::Infallible;

    /// `http(s)://...` is a URL; an existing file is an archive; anything else a folder.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return Ok(Source::Url(s.to_string()));
        }
        let path = PathBuf::from(s.strip_prefix("file://").unwrap_or(s));
        Ok(if path.is_file() {
            Source::Archive(path)
        } else {
            Source::Folder(path)
        })
    }
}

/// One place to get a file from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidate {
    /// A local file, used in place (archive) or copied (protocol files).
    Local(PathBuf),
    /// A URL.
    Remote(String),
}

impl std::fmt::Display for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Candidate::Local(p) => write!(f, "{}", p.display()),
            Candidate::Remote(u) => write!(f, "{u}"),
        }
    }
}

/// `base` joined with `name`, with exactly one slash between.
pub fn join_url(base: &str, name: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), name)
}

/// The candidates for `name`, in order: the copy already in `dir`, `from`, `mirrors`, then
/// the `defaults` when given. A [`Source::Archive`] stands for the file `single` (LFW's
/// archive); the other files are looked for beside it.
pub fn candidates(
    name: &str,
    dir: &Path,
    from: Option<&Source>,
    mirrors: &[String],
    defaults: Option<&DefaultSources>,
    single: Option<&str>,
) -> Vec<Candidate> {
    let mut out = vec![Candidate::Local(dir.join(name))];
    match from {
        Some(Source::Folder(d)) => out.push(Candidate::Local(d.join(name))),
        Some(Source::Archive(archive)) => {
            let is_archive = single == Some(name);
            match (is_archive, archive.parent()) {
                (true, _) => out.push(Candidate::Local(archive.clone())),
                (false, Some(dir)) => out.push(Candidate::Local(dir.join(name))),
                (false, None) => {}
            }
        }
        Some(Source::Url(base)) => out.push(Candidate::Remote(join_url(base, name))),
        None => {}
    }
    out.extend(mirrors.iter().map(|m| Candidate::Remote(join_url(m, name))));
    if let Some(d) = defaults {
        out.extend(
            d.base_urls
                .iter()
                .map(|b| Candidate::Remote(join_url(b, name))),
        );
        out.extend(
            d.file_urls
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, u)| Candidate::Remote(u.clone())),
        );
    }
    let mut unique = Vec::with_capacity(out.len());
    for c in out {
        if !unique.contains(&c) {
            unique.push(c);
        }
    }
    unique
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_strings_are_classified() {
        assert_eq!(
            "https://h/x/".parse::<Source>().unwrap(),
            Source::Url("https://h/x/".into())
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.tgz");
        std::fs::write(&file, b"x").unwrap();
        assert_eq!(
            file.to_str().unwrap().parse::<Source>().unwrap(),
            Source::Archive(file.clone())
        );
        let d = dir.path().to_str().unwrap();
        assert_eq!(
            d.parse::<Source>().unwrap(),
            Source::Folder(dir.path().to_path_buf())
        );
    }

    #[test]
    fn candidates_are_ordered_and_include_figshare_only_where_it_applies() {
        let lfw = Path::new("/d/lfw");
        let c = candidates(
            "pairs.txt",
            lfw,
            Some(&Source::Url("http://m1/".into())),
            &["http://m2".into()],
            Some(&DefaultSources::lfw()),
            None,
        );
        let s: Vec<String> = c.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            s,
            [
                "/d/lfw/pairs.txt",
                "http://m1/pairs.txt",
                "http://m2/pairs.txt",
                "https://vis-www.cs.umass.edu/lfw/pairs.txt",
                "http://vis-www.cs.umass.edu/lfw/pairs.txt",
                "https://ndownloader.figshare.com/files/5976006",
            ]
        );
        let c = candidates(
            "people.txt",
            lfw,
            Some(&Source::Archive("/x/a.tgz".into())),
            &[],
            None,
            Some("lfw-deepfunneled.tgz"),
        );
        assert_eq!(
            c,
            [
                Candidate::Local(lfw.join("people.txt")),
                Candidate::Local("/x/people.txt".into())
            ]
        );
        let c = candidates(
            "lfw-deepfunneled.tgz",
            lfw,
            Some(&Source::Archive("/x/a.tgz".into())),
            &[],
            None,
            Some("lfw-deepfunneled.tgz"),
        );
        assert_eq!(c[1], Candidate::Local("/x/a.tgz".into()));
    }

    #[test]
    fn mtcnn_defaults_are_facenet_pytorch_raw_urls() {
        let c = candidates(
            "pnet.pt",
            Path::new("/d/mtcnn"),
            None,
            &[],
            Some(&DefaultSources::mtcnn()),
            None,
        );
        let s: Vec<String> = c.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            s,
            [
                "/d/mtcnn/pnet.pt",
                "https://raw.githubusercontent.com/timesler/facenet-pytorch/master/data/pnet.pt",
                "https://github.com/timesler/facenet-pytorch/raw/master/data/pnet.pt",
            ]
        );
    }
}
