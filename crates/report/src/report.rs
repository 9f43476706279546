//! A report across runs (`cargo xtask report runs/a runs/b`): one self-contained HTML page
//! (plots inlined as SVG, no external resources) and a markdown file with PNG plots beside
//! it. A table (backbone, loss, protocol, accuracy +- std, AUC, TAR at FAR 1e-3 / 1e-2,
//! training images/s and time), training curves, and an ROC overlay. It reads only the run
//! files (`model.json`, `metrics.jsonl`, `eval/eval.json`), through [`RunDir`]; a run that
//! cannot be read is left out with a warning rather than sinking the whole report.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use arcface_eval::{EvalReport, MetricRecord, ModelInfo, RunDir};

use crate::error::{Error, Result};
use crate::plots::{render, Curves, CurvesPlot, PlotTarget, RocPlot};

/// What a run folder says about itself.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Folder name.
    pub name: String,
    /// The folder.
    pub dir: PathBuf,
    /// `model.json`, when present.
    pub model: Option<ModelInfo>,
    /// `eval/eval.json`, when present.
    pub eval: Option<EvalReport>,
    /// Training history from `metrics.jsonl`.
    pub curves: Curves,
    /// Median training throughput (images/s).
    pub images_per_sec: Option<f64>,
    /// Training time: the largest `elapsed_s`.
    pub training_seconds: Option<f64>,
}

/// Turns a run's metric records into curves, median throughput and training time (the
/// largest `elapsed_s`).
pub fn curves(records: &[MetricRecord], name: &str) -> (Curves, Option<f64>, Option<f64>) {
    let mut c = Curves {
        name: name.to_string(),
        ..Default::default()
    };
    let (mut speeds, mut elapsed) = (Vec::new(), None::<f64>);
    for r in records {
        match *r {
            MetricRecord::Train {
                step,
                loss,
                accuracy,
                lr,
                images_per_sec,
                elapsed_s,
                ..
            } => {
                let step = step as f64;
                c.loss.push((step, loss));
                c.train_accuracy.push((step, accuracy));
                c.lr.push((step, lr));
                speeds.push(images_per_sec);
                elapsed = Some(elapsed.map_or(elapsed_s, |e| e.max(elapsed_s)));
            }
            MetricRecord::Val { step, accuracy, .. } => {
                c.val_accuracy.push((step as f64, accuracy))
            }
        }
    }
    speeds.sort_by(f64::total_cmp);
    let median = (!speeds.is_empty()).then(|| speeds[speeds.len() / 2]);
    (c, median, elapsed)
}

/// Reads one run folder; a folder with none of the run files is an error.
pub fn read_run(dir: &Path) -> Result<RunSummary> {
    let run = RunDir::new(dir);
    let invalid = |what: &str| Error::Invalid(format!("{}: {what}", dir.display()));
    if !dir.is_dir() {
        return Err(invalid("not a run folder (does not exist)"));
    }
    let name = run.name();
    let model = run
        .model_info_path()
        .is_file()
        .then(|| run.model_info())
        .transpose()?;
    let eval = run
        .eval_summary_path()
        .is_file()
        .then(|| run.eval_summary())
        .transpose()?;
    let has_metrics = run.metrics_path().is_file();
    let records = if has_metrics {
        run.metrics()?
    } else {
        Vec::new()
    };
    let (curves, images_per_sec, training_seconds) = curves(&records, &name);
    if model.is_none() && eval.is_none() && !has_metrics {
        return Err(invalid(
            "no model.json, metrics.jsonl or eval/eval.json: nothing to report",
        ));
    }
    Ok(RunSummary {
        name,
        dir: dir.to_path_buf(),
        model,
        eval,
        curves,
        images_per_sec,
        training_seconds,
    })
}

/// `r50` for the presets, else the stage layout and width.
pub fn backbone_name(c: &arcface_backbone::Config) -> String {
    for n in ["r18", "r34", "r50", "r100"] {
        if let Some(p) = arcface_backbone::Config::from_name(n) {
            if p.layers == c.layers {
                return if c.width == 64 {
                    n.to_string()
                } else {
                    format!("{n} (width {})", c.width)
                };
            }
        }
    }
    format!("{:?} (width {})", c.layers, c.width)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{:.2}%", 100.0 * x))
}

fn duration(s: Option<f64>) -> String {
    s.map_or("-".into(), |s| {
        let s = s as u64;
        format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60)
    })
}

/// Table rows: one `Vec<String>` per run, columns as [`TABLE_HEADER`].
fn table_rows(runs: &[RunSummary]) -> Vec<Vec<String>> {
    runs.iter()
        .map(|r| {
            let e = r.eval.as_ref();
            let tar = |k: &str| pct(e.and_then(|e| e.tar_at_far.get(k).copied()));
            vec![
                r.name.clone(),
                r.model
                    .as_ref()
                    .map_or("-".into(), |m| backbone_name(&m.backbone)),
                r.model.as_ref().map_or("-".into(), |m| m.loss.clone()),
                e.map_or_else(
                    || r.model.as_ref().map_or("-".into(), |m| m.protocol.clone()),
                    |e| e.protocol.clone(),
                ),
                e.map_or("-".into(), |e| {
                    format!(
                        "{:.2}% +- {:.2}%",
                        100.0 * e.accuracy_mean,
                        100.0 * e.accuracy_std
                    )
                }),
                e.map_or("-".into(), |e| format!("{:.4}", e.auc)),
                tar("0.001"),
                tar("0.01"),
                r.images_per_sec.map_or("-".into(), |s| format!("{s:.1}")),
                duration(r.training_seconds),
            ]
        })
        .collect()
}

/// Column names of the report table.
pub const TABLE_HEADER: [&str; 10] = [
    "run",
    "backbone",
    "loss",
    "protocol",
    "accuracy",
    "AUC",
    "TAR@FAR=1e-3",
    "TAR@FAR=1e-2",
    "train images/s",
    "train time",
];

/// Writes `report.html` and `report.md` (+ `report_curves.png`, `report_roc.png`) into
/// `out_dir`; returns the HTML path.
pub fn write_report(runs: &[PathBuf], out_dir: &Path) -> Result<PathBuf> {
    if runs.is_empty() {
        return Err(Error::Invalid("no runs to report".into()));
    }
    let summaries: Vec<RunSummary> = runs
        .iter()
        .filter_map(|d| match read_run(d) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("leaving {} out of the report: {e}", d.display());
                None
            }
        })
        .collect();
    if summaries.is_empty() {
        return Err(Error::Invalid("none of the runs could be read".into()));
    }
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let curves: Vec<Curves> = summaries.iter().map(|s| s.curves.clone()).collect();
    let rocs: Vec<(String, &arcface_eval::metrics::RocCurve)> = summaries
        .iter()
        .filter_map(|s| s.eval.as_ref().map(|e| (s.name.clone(), &e.roc)))
        .collect();
    let curves_plot = CurvesPlot {
        title: "Training curves".into(),
        runs: &curves,
    };
    let roc_plot = RocPlot {
        title: "ROC (evaluated runs)".into(),
        curves: rocs,
    };
    let (mut curves_svg, mut roc_svg) = (String::new(), String::new());
    render(&curves_plot, (1000, 900), PlotTarget::Svg(&mut curves_svg))?;
    render(
        &curves_plot,
        (1000, 900),
        PlotTarget::File(&out_dir.join("report_curves.png")),
    )?;
    let has_roc = !roc_plot.curves.is_empty();
    if has_roc {
        render(&roc_plot, (800, 600), PlotTarget::Svg(&mut roc_svg))?;
        render(
            &roc_plot,
            (800, 600),
            PlotTarget::File(&out_dir.join("report_roc.png")),
        )?;
    }
    let rows = table_rows(&summaries);

    let mut md = String::from("# arcface-rs report\n\n");
    let _ = writeln!(md, "| {} |", TABLE_HEADER.join(" | "));
    let _ = writeln!(md, "|{}", "---|".repeat(TABLE_HEADER.len()));
    for r in &rows {
        let _ = writeln!(md, "| {} |", r.join(" | "));
    }
    md += "\n## Training curves\n\n![training curves](report_curves.png)\n";
    if has_roc {
        md += "\n## ROC\n\n![ROC](report_roc.png)\n";
    }
    let md_path = out_dir.join("report.md");
    std::fs::write(&md_path, md).map_err(|e| Error::io(&md_path, e))?;

    let mut html = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>arcface-rs report</title><style>\
         body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:12px 0}\
         th,td{border:1px solid #bbb;padding:4px 10px;text-align:right}th{background:#eee}\
         td:first-child{text-align:left}svg{max-width:100%;height:auto}</style></head><body>\n\
         <h1>arcface-rs report</h1>\n<table><tr>",
    );
    for h in TABLE_HEADER {
        let _ = write!(html, "<th>{}</th>", escape(h));
    }
    html += "</tr>\n";
    for r in &rows {
        html += "<tr>";
        for c in r {
            let _ = write!(html, "<td>{}</td>", escape(c));
        }
        html += "</tr>\n";
    }
    html += "</table>\n<h2>Training curves</h2>\n<div>";
    html += &curves_svg;
    html += "</div>\n";
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

    #[test]
    fn durations_and_percentages() {
        assert_eq!(duration(Some(3725.0)), "1h02m05s");
        assert_eq!(pct(Some(0.98765)), "98.77%");
        assert_eq!(escape("<a&b>"), "&lt;a&amp;b&gt;");
    }
}
