//! Parsers for the LFW protocol files: `pairs.txt` (View 2), `pairsDevTrain/Test.txt`
//! (View 1), `people.txt`, `peopleDevTrain/Test.txt` and `lfw-names.txt`.
//!
//! Formats as documented with the LFW release (Huang et al., UMass TR 07-49, 2007, and
//! `../shared/data/lfw/README.md`): whitespace-separated fields; a matched pair is
//! `name i j`, a mismatched pair `name1 i name2 j`, image numbers are 1-based. Errors name
//! the file and the 1-based line.

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

/// One image of an LFW identity: `lfw-deepfunneled/<name>/<name>_<index:04>.jpg`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    /// Identity name with underscores for spaces (`George_W_Bush`).
    pub name: String,
    /// 1-based image number.
    pub index: u32,
}

impl ImageRef {
    /// The image's file name, `<name>_<index:04>.jpg`.
    pub fn file_name(&self) -> String {
        format!("{}_{:04}.jpg", self.name, self.index)
    }
}

/// A verification pair from a pairs file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// First image.
    pub a: ImageRef,
    /// Second image.
    pub b: ImageRef,
    /// Whether both images show the same person.
    pub same: bool,
    /// 0-based fold (always 0 for the View 1 files).
    pub fold: usize,
}

/// A parsed pairs file, with the line each pair came from.
#[derive(Debug, Clone)]
pub struct PairsFile {
    /// The file read.
    pub path: PathBuf,
    /// Number of folds (1 for the View 1 files).
    pub folds: usize,
    /// Matched pairs per fold (equal to mismatched pairs per fold).
    pub per_fold: usize,
    /// Pairs in file order.
    pub pairs: Vec<Pair>,
    /// 1-based line of each pair, parallel to `pairs`.
    pub lines: Vec<usize>,
}

/// A `name count` line of a people or names file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Identity name.
    pub name: String,
    /// Number of images of that identity.
    pub count: u32,
    /// 1-based line it came from.
    pub line: usize,
}

/// Walks the lines of a text file, remembering line numbers for error messages.
struct Cursor<'a> {
    path: &'a Path,
    lines: Vec<&'a str>,
    next: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str, path: &'a Path) -> Self {
        // Tolerate CRLF copies and trailing blank lines, which public mirrors often have.
        let mut lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
        while lines.last().is_some_and(|l| l.trim().is_empty()) {
            lines.pop();
        }
        Cursor { path, lines, next: 0 }
    }

    /// The next line as (1-based number, fields), or an error saying what was expected.
    fn fields(&mut self, what: &str) -> Result<(usize, Vec<&'a str>)> {
        let Some(line) = self.lines.get(self.next) else {
            return Err(DataError::parse(
                self.path,
                self.lines.len() + 1,
                format!("missing lines: expected {what}, but the file ends after line {}", self.lines.len()),
            ));
        };
        self.next += 1;
        Ok((self.next, line.split_whitespace().collect()))
    }

    fn finish(&self) -> Result<()> {
        if self.next < self.lines.len() {
            return Err(DataError::parse(
                self.path,
                self.next + 1,
                format!("unexpected extra line {:?} after the last expected entry", self.lines[self.next]),
            ));
        }
        Ok(())
    }

    fn number<T: std::str::FromStr>(&self, line: usize, field: &str, what: &str) -> Result<T> {
        field
            .parse()
            .map_err(|_| DataError::parse(self.path, line, format!("{what} {field:?} is not a non-negative integer")))
    }

    fn image_index(&self, line: usize, field: &str) -> Result<u32> {
        let index: u32 = self.number(line, field, "image number")?;
        if index == 0 {
            return Err(DataError::parse(self.path, line, "image numbers are 1-based, found 0"));
        }
        Ok(index)
    }

    /// A header line holding exactly `n` numbers.
    fn header(&mut self, n: usize, what: &str) -> Result<(usize, Vec<usize>)> {
        let (line, fields) = self.fields(what)?;
        if fields.len() != n {
            return Err(DataError::parse(
                self.path,
                line,
                format!("expected {what} ({n} field(s)), found {} field(s)", fields.len()),
            ));
        }
        let nums = fields.iter().map(|f| self.number(line, f, what)).collect::<Result<Vec<usize>>>()?;
        Ok((line, nums))
    }

    fn person(&mut self, what: &str) -> Result<Person> {
        let (line, f) = self.fields(what)?;
        if f.len() != 2 {
            return Err(DataError::parse(
                self.path,
                line,
                format!("expected `name count` (2 fields), found {} field(s)", f.len()),
            ));
        }
        let count = self.number(line, f[1], "image count")?;
        Ok(Person { name: self.folder_name(line, f[0])?.to_string(), count, line })
    }

    /// A person's name, which names a folder of images: never a path or `.`/`..`.
    fn folder_name<'n>(&self, line: usize, name: &'n str) -> Result<&'n str> {
        if name.contains(['/', '\\']) || name == "." || name == ".." {
            return Err(DataError::parse(self.path, line, format!("{name:?} is not a plain folder name")));
        }
        Ok(name)
    }

    fn pair(&mut self, same: bool, fold: usize) -> Result<(Pair, usize)> {
        let kind = if same { "a matched pair `name i j`" } else { "a mismatched pair `name1 i name2 j`" };
        let (line, f) = self.fields(kind)?;
        let want = if same { 3 } else { 4 };
        if f.len() != want {
            return Err(DataError::parse(
                self.path,
                line,
                format!("expected {kind} ({want} fields), found {} field(s)", f.len()),
            ));
        }
        let names = if same { vec![f[0]] } else { vec![f[0], f[2]] };
        for name in names {
            self.folder_name(line, name)?;
        }
        let pair = if same {
            let name = f[0].to_string();
            let a = ImageRef { name: name.clone(), index: self.image_index(line, f[1])? };
            let b = ImageRef { name, index: self.image_index(line, f[2])? };
            Pair { a, b, same, fold }
        } else {
            let a = ImageRef { name: f[0].to_string(), index: self.image_index(line, f[1])? };
            let b = ImageRef { name: f[2].to_string(), index: self.image_index(line, f[3])? };
            if a.name == b.name {
                return Err(DataError::parse(self.path, line, format!("mismatched pair names {} twice", a.name)));
            }
            Pair { a, b, same, fold }
        };
        Ok((pair, line))
    }
}

/// Parses a pairs file: `pairs.txt` (header `folds n`) or a View 1 file (header `n`).
/// Each fold holds `n` matched pairs followed by `n` mismatched pairs.
pub fn parse_pairs(text: &str, path: &Path) -> Result<PairsFile> {
    let mut cur = Cursor::new(text, path);
    let (line, header) = cur.fields("a header line `folds pairs_per_fold` or `pairs`")?;
    let (folds, per_fold) = match header.as_slice() {
        [n] => (1, cur.number(line, n, "pair count")?),
        [f, n] => (cur.number(line, f, "fold count")?, cur.number(line, n, "pairs per fold")?),
        _ => {
            return Err(DataError::parse(
                path,
                line,
                format!("header must be `folds pairs_per_fold` or `pairs`, found {} fields", header.len()),
            ))
        }
    };
    let mut out = PairsFile { path: path.to_path_buf(), folds, per_fold, pairs: Vec::new(), lines: Vec::new() };
    // Every pair read consumes a line, which bounds the loops by the file's length; with no
    // pairs per fold nothing would, and a header of 2^63 empty folds would spin for ever.
    let folds_to_read = if per_fold == 0 { 0 } else { folds };
    for fold in 0..folds_to_read {
        for same in [true, false] {
            for _ in 0..per_fold {
                let (pair, line) = cur.pair(same, fold)?;
                out.pairs.push(pair);
                out.lines.push(line);
            }
        }
    }
    cur.finish()?;
    Ok(out)
}

/// Parses `people.txt`: a fold count, then per fold a count line and that many `name count` lines.
pub fn parse_people_folds(text: &str, path: &Path) -> Result<Vec<Vec<Person>>> {
    let mut cur = Cursor::new(text, path);
    let (_, h) = cur.header(1, "the fold count")?;
    // The count is the file's word, not a size to reserve: a damaged header of 2^64 - 1 folds
    // would abort the process on allocation instead of failing on the missing lines.
    let mut folds = Vec::new();
    for fold in 0..h[0] {
        let (_, n) = cur.header(1, &format!("the people count of fold {fold}"))?;
        let people = (0..n[0]).map(|_| cur.person("a `name count` line")).collect::<Result<Vec<_>>>()?;
        folds.push(people);
    }
    cur.finish()?;
    Ok(folds)
}

/// Parses `peopleDevTrain.txt` / `peopleDevTest.txt`: a count line, then `name count` lines.
pub fn parse_people_list(text: &str, path: &Path) -> Result<Vec<Person>> {
    let mut cur = Cursor::new(text, path);
    let (_, n) = cur.header(1, "the people count")?;
    let people = (0..n[0]).map(|_| cur.person("a `name count` line")).collect::<Result<Vec<_>>>()?;
    cur.finish()?;
    Ok(people)
}

/// Parses `lfw-names.txt`: `name count` lines with no header, each name once, each count at
/// least 1 (the file announces the image tree, and `download` checks the tree against it).
pub fn parse_names(text: &str, path: &Path) -> Result<Vec<Person>> {
    let mut cur = Cursor::new(text, path);
    let mut people: Vec<Person> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while cur.next < cur.lines.len() {
        let p = cur.person("a `name count` line")?;
        if p.count == 0 {
            return Err(DataError::parse(path, p.line, format!("{} has an image count of 0", p.name)));
        }
        if !seen.insert(p.name.clone()) {
            return Err(DataError::parse(path, p.line, format!("{} is listed twice", p.name)));
        }
        people.push(p);
    }
    Ok(people)
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))
}

/// Reads and parses a pairs file (see [`parse_pairs`]).
pub fn read_pairs(path: impl AsRef<Path>) -> Result<PairsFile> {
    let path = path.as_ref();
    parse_pairs(&read_text(path)?, path)
}

/// Reads and parses `people.txt` (see [`parse_people_folds`]).
pub fn read_people_folds(path: impl AsRef<Path>) -> Result<Vec<Vec<Person>>> {
    let path = path.as_ref();
    parse_people_folds(&read_text(path)?, path)
}

/// Reads and parses a View 1 people file (see [`parse_people_list`]).
pub fn read_people_list(path: impl AsRef<Path>) -> Result<Vec<Person>> {
    let path = path.as_ref();
    parse_people_list(&read_text(path)?, path)
}

/// Reads and parses `lfw-names.txt` (see [`parse_names`]).
pub fn read_names(path: impl AsRef<Path>) -> Result<Vec<Person>> {
    let path = path.as_ref();
    parse_names(&read_text(path)?, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("t.txt")
    }

    fn err_line(e: DataError) -> (usize, String) {
        match e {
            DataError::Parse { line, message, .. } => (line, message),
            other => panic!("expected a parse error, got {other}"),
        }
    }

    #[test]
    fn pairs_with_folds() {
        let text = "2\t1\nA\t1\t2\nA\t1\tB\t3\nC\t2\t4\r\nC\t1\tD\t1\n\n";
        let f = parse_pairs(text, p()).unwrap();
        assert_eq!((f.folds, f.per_fold, f.pairs.len()), (2, 1, 4));
        assert_eq!(f.lines, vec![2, 3, 4, 5]);
        assert_eq!(f.pairs[1].b, ImageRef { name: "B".into(), index: 3 });
        assert_eq!(f.pairs.iter().map(|p| (p.same, p.fold)).collect::<Vec<_>>(), [
            (true, 0),
            (false, 0),
            (true, 1),
            (false, 1)
        ]);
        assert_eq!(f.pairs[0].a.file_name(), "A_0001.jpg");
    }

    #[test]
    fn dev_pairs_single_fold() {
        let f = parse_pairs("1\nA 1 2\nA 1 B 1\n", p()).unwrap();
        assert_eq!((f.folds, f.per_fold, f.pairs.len()), (1, 1, 2));
    }

    #[test]
    fn pair_errors_name_the_line() {
        assert_eq!(err_line(parse_pairs("1\nA 1\nA 1 B 1\n", p()).unwrap_err()).0, 2);
        assert_eq!(err_line(parse_pairs("1\nA 1 x\nA 1 B 1\n", p()).unwrap_err()).0, 2);
        assert_eq!(err_line(parse_pairs("1\nA 1 2\nA 1 B 0\n", p()).unwrap_err()).0, 3);
        assert_eq!(err_line(parse_pairs("1\nA 1 2\nA 1 A 3\n", p()).unwrap_err()).0, 3);
        // A matched line where a mismatched one is due has the wrong field count.
        assert_eq!(err_line(parse_pairs("1\nA 1 2\nA 1 3\n", p()).unwrap_err()).0, 3);
        let (line, msg) = err_line(parse_pairs("2 1\nA 1 2\nA 1 B 1\n", p()).unwrap_err());
        assert_eq!(line, 4);
        assert!(msg.contains("missing lines"), "{msg}");
        let (line, msg) = err_line(parse_pairs("1\nA 1 2\nA 1 B 1\nC 1 2\n", p()).unwrap_err());
        assert_eq!(line, 4);
        assert!(msg.contains("extra"), "{msg}");
        assert_eq!(err_line(parse_pairs("1 2 3\n", p()).unwrap_err()).0, 1);
        assert_eq!(err_line(parse_pairs("", p()).unwrap_err()).0, 1);
        // Names become folder names: a path in a protocol file is refused, not followed.
        let (line, msg) = err_line(parse_pairs("1 1\nA 1 2\n../B 1 C 1\n", p()).unwrap_err());
        assert_eq!(line, 3);
        assert!(msg.contains("plain folder name"), "{msg}");
    }

    #[test]
    fn names_are_unique_with_positive_counts() {
        assert_eq!(err_line(parse_names("A\t1\nA\t2\n", p()).unwrap_err()).0, 2);
        assert_eq!(err_line(parse_names("A\t1\nB\t0\n", p()).unwrap_err()).0, 2);
        assert_eq!(err_line(parse_names("A\t1\n..\t2\n", p()).unwrap_err()).0, 2);
    }

    #[test]
    fn people_folds_and_lists() {
        let folds = parse_people_folds("2\n1\nA\t3\n2\nB\t1\nC\t2\n", p()).unwrap();
        assert_eq!(folds.len(), 2);
        assert_eq!(folds[1][1], Person { name: "C".into(), count: 2, line: 6 });
        let list = parse_people_list("2\nA 1\nB 4\n", p()).unwrap();
        assert_eq!(list[1].count, 4);
        let names = parse_names("A\t1\nB\t2\n", p()).unwrap();
        assert_eq!(names.len(), 2);
    }

    #[test]
    fn people_errors_name_the_line() {
        // Count says 3 people but the fold has 2, then the next fold header is read as a person.
        assert_eq!(err_line(parse_people_folds("2\n3\nA 1\nB 1\n1\nC 1\n", p()).unwrap_err()).0, 5);
        assert_eq!(err_line(parse_people_list("2\nA 1\nB\n", p()).unwrap_err()).0, 3);
        assert_eq!(err_line(parse_people_list("2\nA 1\nB -1\n", p()).unwrap_err()).0, 3);
        assert_eq!(err_line(parse_people_list("x\n", p()).unwrap_err()).0, 1);
        assert_eq!(err_line(parse_names("A 1\nB 2 3\n", p()).unwrap_err()).0, 2);
    }
}
