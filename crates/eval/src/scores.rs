//! Score tables: tab-separated files with a header naming at least `same` (1/0) and `score`,
//! optionally `fold`; other columns (such as the image names that `eval` writes) are kept
//! out of the way. Lets `eval --scores` evaluate scores computed by any other tool.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};

/// Scored pairs read from (or written to) a TSV file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreTable {
    /// Whether each pair shows the same person.
    pub same: Vec<bool>,
    /// Similarity (or distance) of each pair.
    pub scores: Vec<f64>,
    /// Fold id of each pair, when the file has a `fold` column.
    pub folds: Option<Vec<usize>>,
    /// Optional per-pair labels (columns `a` and `b`), empty when absent.
    pub names: Vec<(String, String)>,
}

fn parse_same(field: &str) -> Option<bool> {
    match field.trim() {
        "1" | "true" | "True" => Some(true),
        "0" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Reads a score table; errors name the file and line. Blank lines and `#` lines are skipped.
pub fn read_scores_tsv(path: &Path) -> Result<ScoreTable> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_scores_tsv(&text, path)
}

/// Parses score-table text; `path` is only used in error messages.
pub fn parse_scores_tsv(text: &str, path: &Path) -> Result<ScoreTable> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    let Some((header_line, header)) = lines.next() else {
        return Err(Error::format(
            path,
            "empty file: expected a header with `same` and `score`",
        ));
    };
    let cols: Vec<&str> = header.split('\t').map(str::trim).collect();
    let find = |name: &str| cols.iter().position(|c| *c == name);
    let (Some(i_same), Some(i_score)) = (find("same"), find("score")) else {
        return Err(Error::parse(
            path,
            header_line,
            format!("header must name tab-separated columns `same` and `score`, got {header:?}"),
        ));
    };
    let i_fold = find("fold");
    let i_names = find("a").zip(find("b"));
    let mut table = ScoreTable {
        folds: i_fold.map(|_| Vec::new()),
        ..Default::default()
    };
    for (line, l) in lines {
        let fields: Vec<&str> = l.split('\t').collect();
        if fields.len() != cols.len() {
            return Err(Error::parse(
                path,
                line,
                format!(
                    "expected {} tab-separated fields, found {}",
                    cols.len(),
                    fields.len()
                ),
            ));
        }
        let same = parse_same(fields[i_same]).ok_or_else(|| {
            Error::parse(
                path,
                line,
                format!("`same` must be 1 or 0, got {:?}", fields[i_same]),
            )
        })?;
        let score: f64 = fields[i_score]
            .trim()
            .parse()
            .ok()
            .filter(|s: &f64| s.is_finite())
            .ok_or_else(|| {
                Error::parse(
                    path,
                    line,
                    format!("`score` must be a finite number, got {:?}", fields[i_score]),
                )
            })?;
        if let (Some(i), Some(folds)) = (i_fold, table.folds.as_mut()) {
            let fold = fields[i].trim().parse().map_err(|_| {
                Error::parse(
                    path,
                    line,
                    format!("`fold` must be a non-negative integer, got {:?}", fields[i]),
                )
            })?;
            folds.push(fold);
        }
        if let Some((a, b)) = i_names {
            table
                .names
                .push((fields[a].to_string(), fields[b].to_string()));
        }
        table.same.push(same);
        table.scores.push(score);
    }
    if table.scores.is_empty() {
        return Err(Error::format(path, "no score rows after the header"));
    }
    Ok(table)
}

/// Writes a score table with columns `a b same score fold` (names and folds when present).
pub fn write_scores_tsv(path: &Path, table: &ScoreTable) -> Result<()> {
    let mut out = String::new();
    let names = table.names.len() == table.scores.len();
    if names {
        out.push_str("a\tb\t");
    }
    out.push_str("same\tscore");
    out.push_str(if table.folds.is_some() {
        "\tfold\n"
    } else {
        "\n"
    });
    for i in 0..table.scores.len() {
        if names {
            let (a, b) = &table.names[i];
            let _ = write!(out, "{a}\t{b}\t");
        }
        let _ = write!(out, "{}\t{}", u8::from(table.same[i]), table.scores[i]);
        if let Some(f) = &table.folds {
            let _ = write!(out, "\t{}", f[i]);
        }
        out.push('\n');
    }
    std::fs::write(path, out).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_columns_in_any_order() {
        let t = parse_scores_tsv(
            "score\tx\tsame\n0.5\tq\t1\n\n-0.25\tr\t0\n",
            Path::new("t.tsv"),
        )
        .unwrap();
        assert_eq!(t.same, vec![true, false]);
        assert_eq!(t.scores, vec![0.5, -0.25]);
        assert!(t.folds.is_none());
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse_scores_tsv("same\tscore\n1\t0.5\n2\t0.1\n", Path::new("s.tsv")).unwrap_err();
        assert_eq!(e.to_string(), "s.tsv:3: `same` must be 1 or 0, got \"2\"");
        let e = parse_scores_tsv("same\tscore\n1\tnan\n", Path::new("s.tsv")).unwrap_err();
        assert!(e.to_string().starts_with("s.tsv:2:"), "{e}");
        let e = parse_scores_tsv("same\tscore\n1\n", Path::new("s.tsv")).unwrap_err();
        assert!(e.to_string().contains("s.tsv:2: expected 2"), "{e}");
        let e = parse_scores_tsv("label,score\n", Path::new("s.tsv")).unwrap_err();
        assert!(e.to_string().contains("s.tsv:1: header"), "{e}");
        assert!(parse_scores_tsv("", Path::new("s.tsv")).is_err());
        assert!(parse_scores_tsv("same\tscore\tfold\n1\t0.1\t-1\n", Path::new("s.tsv")).is_err());
    }

    #[test]
    fn write_then_read_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.tsv");
        let t = ScoreTable {
            same: vec![true, false],
            scores: vec![0.125, -0.5],
            folds: Some(vec![0, 3]),
            names: vec![
                ("x/1.jpg".into(), "y/2.jpg".into()),
                ("a".into(), "b".into()),
            ],
        };
        write_scores_tsv(&p, &t).unwrap();
        assert_eq!(read_scores_tsv(&p).unwrap(), t);
    }
}
