//! The page of a View 2 multi-fold run (`train --protocol view2 --folds all`): one row per
//! held-out fold (accuracy, AUC, EER, threshold, training images and identities), the mean
//! and standard deviation over the folds, and the ROC curves of every fold in one plot. Same
//! look as the cross-run report ([`crate::report`]): a self-contained HTML page (plots
//! inlined as SVG) and a markdown file with a PNG beside it.
//!
//! Protocol: Huang et al., "Labeled Faces in the Wild", UMass TR 07-49 (2007), View 2: the
//! result is the mean and (population) standard deviation of the ten fold accuracies. Each
//! fold's numbers are its sub-run's `eval/eval.json`, read through [`RunDir`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use arcface_eval::metrics::RocCurve;
use arcface_eval::{EvalReport, RunDir};

use crate::error::{Error, Result};
use crate::plots::{render, PlotTarget, RocPlot};

/// One evaluated fold of a multi-fold run.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldRow {
    /// The held-out fold.
    pub fold: usize,
    /// Its sub-run folder (holding `eval/eval.json`).
    pub run_dir: PathBuf,
    /// Accuracy on the fold's test pairs.
    pub accuracy: f64,
    /// Area under the fold's ROC.
    pub auc: f64,
    /// The fold's equal error rate.
    pub eer: f64,
    /// The fold's best global threshold.
    pub threshold: f64,
    /// Training images of the fold (the people of the other folds).
    pub train_images: usize,
    /// Training identities of the fold.
    pub train_identities: usize,
}

/// Mean and population standard deviation (numpy's `np.std`, as eval's fold accuracies);
/// `(NaN, NaN)` for no values.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// What the folds page shows.
#[derive(Debug, Clone)]
pub struct FoldsPage<'a> {
    /// Page title (the run's name).
    pub title: String,
    /// Evaluated folds, in fold order.
    pub rows: &'a [FoldRow],
    /// Folds asked for but not finished yet.
    pub pending: Vec<usize>,
}

/// Column names of the per-fold table.
pub const FOLDS_HEADER: [&str; 7] = [
    "fold",
    "accuracy",
    "AUC",
    "EER",
    "threshold",
    "train images",
    "train identities",
];

/// The table's cells: one row per fold, then the `mean +- std` row.
pub fn folds_table(rows: &[FoldRow]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.fold.to_string(),
                format!("{:.2}%", 100.0 * r.accuracy),
                format!("{:.4}", r.auc),
                format!("{:.2}%", 100.0 * r.eer),
                format!("{:.4}", r.threshold),
                r.train_images.to_string(),
                r.train_identities.to_string(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        let col = |f: fn(&FoldRow) -> f64| mean_std(&rows.iter().map(f).collect::<Vec<_>>());
        let (acc, acc_sd) = col(|r| r.accuracy);
        let (auc, auc_sd) = col(|r| r.auc);
        let (eer, eer_sd) = col(|r| r.eer);
        let (thr, thr_sd) = col(|r| r.threshold);
        let (img, _) = col(|r| r.train_images as f64);
        let (ids, _) = col(|r| r.train_identities as f64);
        out.push(vec![
            "mean +- std".into(),
            format!("{:.2}% +- {:.2}%", 100.0 * acc, 100.0 * acc_sd),
            format!("{auc:.4} +- {auc_sd:.4}"),
            format!("{:.2}% +- {:.2}%", 100.0 * eer, 100.0 * eer_sd),
            format!("{thr:.4} +- {thr_sd:.4}"),
            format!("{img:.0}"),
            format!("{ids:.0}"),
        ]);
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Writes `report.html` and `report.md` (+ `folds_roc.png`) of a multi-fold run into
/// `out_dir`; returns the HTML path. A fold whose `eval.json` cannot be read keeps its row
/// but has no curve (with a warning).
pub fn write_folds_report(page: &FoldsPage<'_>, out_dir: &Path) -> Result<PathBuf> {
    if page.rows.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no evaluated fold to report",
            page.title
        )));
    }
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let evals: Vec<(String, EvalReport)> = page
        .rows
        .iter()
        .filter_map(|r| match RunDir::new(&r.run_dir).eval_summary() {
            Ok(e) => Some((format!("fold {}", r.fold), e)),
            Err(e) => {
                tracing::warn!("no ROC for fold {}: {e}", r.fold);
                None
            }
        })
        .collect();
    let curves: Vec<(String, &RocCurve)> = evals.iter().map(|(n, e)| (n.clone(), &e.roc)).collect();
    let has_roc = !curves.is_empty();
    let mut roc_svg = String::new();
    if has_roc {
        let plot = RocPlot {
            title: "ROC of each held-out fold".into(),
            curves,
        };
        render(&plot, (800, 600), PlotTarget::Svg(&mut roc_svg))?;
        render(
            &plot,
            (800, 600),
            PlotTarget::File(&out_dir.join("folds_roc.png")),
        )?;
    }
    let table = folds_table(page.rows);
    let (acc, sd) = mean_std(&page.rows.iter().map(|r| r.accuracy).collect::<Vec<_>>());
    let headline = format!(
        "LFW View 2 accuracy over {} fold(s): {:.2}% +- {:.2}% (mean +- population std)",
        page.rows.len(),
        100.0 * acc,
        100.0 * sd
    );
    let pending = (!page.pending.is_empty()).then(|| {
        let list: Vec<String> = page.pending.iter().map(|f| f.to_string()).collect();
        format!(
            "Not finished yet: fold(s) {} (rerun the same train command to continue).",
            list.join(", ")
        )
    });
    let method = "Each fold's model is trained on the people of the other folds of people.txt and \
                  tested on that fold of pairs.txt; its accuracy is that of eval --protocol view2:K, \
                  the fold's pairs split in ten per class, each part scored with the threshold chosen \
                  on the other nine.";

    let mut md = format!("# {}\n\n{headline}\n\n{method}\n\n", page.title);
    if let Some(p) = &pending {
        let _ = writeln!(md, "{p}\n");
    }
    let _ = writeln!(md, "| {} |", FOLDS_HEADER.join(" | "));
    let _ = writeln!(md, "|{}", "---|".repeat(FOLDS_HEADER.len()));
    for r in &table {
        let _ = writeln!(md, "| {} |", r.join(" | "));
    }
    if has_roc {
        md += "\n## ROC\n\n![ROC of each fold](folds_roc.png)\n";
    }
    let md_path = out_dir.join("report.md");
    std::fs::write(&md_path, md).map_err(|e| Error::io(&md_path, e))?;

    let title = escape(&page.title);
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title><style>\
         body{{font-family:sans-serif;margin:24px;color:#222}}table{{border-collapse:collapse;margin:12px 0}}\
         th,td{{border:1px solid #bbb;padding:4px 10px;text-align:right}}th{{background:#eee}}\
         td:first-child{{text-align:left}}tr.mean td{{font-weight:bold;background:#f6f6f6}}\
         svg{{max-width:100%;height:auto}}</style></head><body>\n<h1>{title}</h1>\n<p><b>{}</b></p>\n<p>{}</p>\n",
        escape(&headline),
        escape(method)
    );
    if let Some(p) = &pending {
        let _ = writeln!(html, "<p><i>{}</i></p>", escape(p));
    }
    html += "<table><tr>";
    for h in FOLDS_HEADER {
        let _ = write!(html, "<th>{}</th>", escape(h));
    }
    html += "</tr>\n";
    for (i, r) in table.iter().enumerate() {
        html += if i == page.rows.len() {
            "<tr class=\"mean\">"
        } else {
            "<tr>"
        };
        for c in r {
            let _ = write!(html, "<td>{}</td>", escape(c));
        }
        html += "</tr>\n";
    }
    html += "</table>\n";
    if has_roc {
        html += "<h2>ROC</h2>\n<div>";
        html += &roc_svg;
        html += "</div>\n";
    }
    html += "</body></html>\n";
    let html_path = out_dir.join("report.html");
    std::fs::write(&html_path, html).map_err(|e| Error::io(&html_path, e))?;
    Ok(html_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(fold: usize, accuracy: f64) -> FoldRow {
        FoldRow {
            fold,
            run_dir: PathBuf::from(format!("fold-{fold}")),
            accuracy,
            auc: 0.9,
            eer: 0.1,
            threshold: 0.3,
            train_images: 10 + fold,
            train_identities: 3,
        }
    }

    #[test]
    fn mean_and_population_std() {
        let (m, s) = mean_std(&[0.9, 0.8, 0.7, 1.0]);
        assert!((m - 0.85).abs() < 1e-12);
        assert!((s - (0.0125f64).sqrt()).abs() < 1e-12, "{s}");
        assert!(mean_std(&[]).0.is_nan());
    }

    #[test]
    fn the_table_ends_with_the_mean_row() {
        let t = folds_table(&[row(0, 0.9), row(3, 0.8)]);
        assert_eq!(t.len(), 3);
        assert_eq!(t[1][0], "3");
        assert_eq!(t[2][0], "mean +- std");
        assert_eq!(t[2][1], "85.00% +- 5.00%");
    }

    #[test]
    fn a_page_without_folds_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let page = FoldsPage {
            title: "x".into(),
            rows: &[],
            pending: vec![0],
        };
        assert!(write_folds_report(&page, dir.path()).is_err());
    }
}
