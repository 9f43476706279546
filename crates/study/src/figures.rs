//! The study's figures (plotters through arcface-report's renderer: PNG + SVG) and its page
//! (`study.md` and a self-contained `study.html` with the SVGs inlined).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use arcface_report::plots::{draw_legend, palette, render, Plot, PlotTarget};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::angles::{ClassAngles, PairAngles};
use super::toy::Toy;
use super::RunRow;
use crate::error::{Result, StudyError};

const FONT: &str = "sans-serif";

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// One histogram series: its legend label, its angles and its colour.
type Series<'a> = (String, &'a [f64], RGBColor);

/// Side-by-side panels of overlaid angle histograms (degrees, fraction of each series per bin).
struct HistPanels<'a> {
    title: String,
    panels: Vec<(String, Vec<Series<'a>>)>,
    bin_deg: f64,
}

impl Plot for HistPanels<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(&self.title, (FONT, 22)).map_err(err)?;
        let areas = root.split_evenly((1, self.panels.len().max(1)));
        let bins = (180.0 / self.bin_deg).ceil() as usize;
        // Shared y range so the panels compare at a glance.
        let hist = |v: &[f64]| {
            let mut h = vec![0.0f64; bins];
            for &a in v {
                let b = ((a / self.bin_deg) as usize).min(bins - 1);
                h[b] += 1.0 / v.len().max(1) as f64;
            }
            h
        };
        let ymax = self
            .panels
            .iter()
            .flat_map(|(_, s)| s.iter().map(|(_, v, _)| hist(v).into_iter().fold(0.0, f64::max)))
            .fold(0.01, f64::max)
            * 1.1;
        for ((name, series), area) in self.panels.iter().zip(areas.iter()) {
            let mut chart = ChartBuilder::on(area)
                .caption(name, (FONT, 18))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(55)
                .build_cartesian_2d(0.0f64..180.0, 0.0f64..ymax)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("angle (degrees)")
                .y_desc("fraction")
                .label_style((FONT, 13))
                .draw()
                .map_err(err)?;
            for (label, values, color) in series {
                let h = hist(values);
                let c = *color;
                chart
                    .draw_series(h.iter().enumerate().map(|(i, &y)| {
                        let x0 = i as f64 * self.bin_deg;
                        Rectangle::new([(x0, 0.0), (x0 + self.bin_deg, y)], c.mix(0.45).filled())
                    }))
                    .map_err(err)?
                    .label(format!("{label} (n={}, mean {:.1})", values.len(), mean(values)))
                    .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.mix(0.6).filled()));
            }
            draw_legend(&mut chart, SeriesLabelPosition::UpperRight, 13)?;
        }
        Ok(())
    }
}

/// Unit-circle panels: 2-D unit embeddings coloured by identity, class centers as rays.
struct CirclePanels<'a> {
    title: String,
    panels: Vec<(String, &'a Toy)>,
}

impl Plot for CirclePanels<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(&self.title, (FONT, 22)).map_err(err)?;
        let areas = root.split_evenly((1, self.panels.len().max(1)));
        for ((name, toy), area) in self.panels.iter().zip(areas.iter()) {
            let mut chart = ChartBuilder::on(area)
                .caption(name, (FONT, 18))
                .margin(10)
                .build_cartesian_2d(-1.25f64..1.25, -1.25f64..1.25)
                .map_err(err)?;
            let circle: Vec<(f64, f64)> =
                (0..=360).map(|d| (d as f64).to_radians()).map(|t| (t.cos(), t.sin())).collect();
            chart.draw_series(LineSeries::new(circle, BLACK.mix(0.3))).map_err(err)?;
            for (class, name) in toy.names.iter().enumerate() {
                let c = palette(class);
                // Points sit on the unit circle; a small radial spread by index keeps
                // overlapping points visible without moving their angle.
                let pts = toy.points.iter().zip(&toy.labels).enumerate().filter(|(_, (_, &l))| l == class);
                chart
                    .draw_series(pts.map(|(i, (p, _))| {
                        let r = 0.93 + 0.07 * ((i * 37 % 100) as f64 / 100.0);
                        Circle::new((p[0] * r, p[1] * r), 2, c.mix(0.7).filled())
                    }))
                    .map_err(err)?
                    .label(name.replace('_', " "))
                    .legend(move |(x, y)| Circle::new((x + 6, y), 4, c.filled()));
                if let Some(w) = toy.centers.get(class) {
                    chart
                        .draw_series(LineSeries::new(vec![(0.0, 0.0), (w[0] * 1.15, w[1] * 1.15)], c.stroke_width(2)))
                        .map_err(err)?;
                }
            }
            draw_legend(&mut chart, SeriesLabelPosition::LowerRight, 11)?;
        }
        Ok(())
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        f64::NAN
    } else {
        s[s.len() / 2]
    }
}

/// Renders a plot as PNG and SVG files and returns the SVG text for inlining.
fn save<P: Plot>(plot: &P, size: (u32, u32), dir: &Path, stem: &str) -> Result<String> {
    render(plot, size, PlotTarget::File(&dir.join(format!("{stem}.png"))))?;
    render(plot, size, PlotTarget::File(&dir.join(format!("{stem}.svg"))))?;
    let mut svg = String::new();
    render(plot, size, PlotTarget::Svg(&mut svg))?;
    Ok(svg)
}

/// Writes the figures, `study.md` and `study.html` into `out`; returns the HTML path.
pub fn write_study(
    out: &Path,
    preset: &str,
    rows: &[RunRow],
    all_runs: &[PathBuf],
    class_angles: &[(String, ClassAngles)],
    pair_angles: &[(String, PairAngles)],
    toy: &[(String, Toy)],
) -> Result<PathBuf> {
    let fig_dir = out.join("figures");
    std::fs::create_dir_all(&fig_dir).map_err(|e| StudyError::io(&fig_dir, e))?;
    let mut svgs: Vec<(&str, String)> = Vec::new();

    let class_plot = HistPanels {
        title: "Training embeddings: angle to own class center vs nearest other center".into(),
        panels: class_angles
            .iter()
            .map(|(loss, a)| {
                (
                    loss.clone(),
                    vec![
                        ("own center".to_string(), a.own.as_slice(), palette(0)),
                        ("nearest other center".to_string(), a.nearest_other.as_slice(), palette(1)),
                    ],
                )
            })
            .collect(),
        bin_deg: 2.0,
    };
    svgs.push(("class_angles", save(&class_plot, (1200, 480), &fig_dir, "class_angles")?));

    let pair_plot = HistPanels {
        title: "Test pairs: angle between the two embeddings".into(),
        panels: pair_angles
            .iter()
            .map(|(loss, a)| {
                (
                    loss.clone(),
                    vec![
                        ("same person".to_string(), a.same.as_slice(), palette(2)),
                        ("different people".to_string(), a.different.as_slice(), palette(3)),
                    ],
                )
            })
            .collect(),
        bin_deg: 3.0,
    };
    svgs.push(("pair_angles", save(&pair_plot, (1200, 480), &fig_dir, "pair_angles")?));

    if !toy.is_empty() {
        let toy_plot = CirclePanels {
            title: "2-D embeddings of the 8 LFW people with the most images".into(),
            panels: toy.iter().map(|(loss, t)| (loss.clone(), t)).collect(),
        };
        svgs.push(("toy_2d", save(&toy_plot, (1200, 620), &fig_dir, "toy_2d")?));
    }

    // The page.
    let mut md = String::new();
    writeln!(md, "# Softmax vs ArcFace on LFW (`{preset}` preset)\n")?;
    writeln!(md, "Same backbone, data, schedule, scale and seed; only the margin differs. Test pairs: the protocol's")?;
    writeln!(md, "identity-disjoint pairs (dev: pairsDevTest.txt), 10-fold accuracy with flip test.\n")?;
    writeln!(md, "| loss | accuracy | AUC | EER | TAR@FAR=1e-3 | TAR@FAR=1e-2 | threshold | run |")?;
    writeln!(md, "| --- | --- | --- | --- | --- | --- | --- | --- |")?;
    for r in rows {
        let e = &r.eval;
        let tar = |k: &str| e.tar_at_far.get(k).copied().unwrap_or(f64::NAN);
        writeln!(
            md,
            "| {} | {:.2}% +- {:.2} | {:.4} | {:.4} | {:.3} | {:.3} | {:.3} | {} |",
            r.loss,
            e.accuracy_mean * 100.0,
            e.accuracy_std * 100.0,
            e.auc,
            e.eer,
            tar("0.001"),
            tar("0.01"),
            e.threshold,
            r.dir.display()
        )?;
    }
    writeln!(md, "\n## Angles to class centers (training images, degrees)\n")?;
    writeln!(md, "| loss | own center: mean / median | nearest other: mean / median | gap of the means |")?;
    writeln!(md, "| --- | --- | --- | --- |")?;
    for (loss, a) in class_angles {
        writeln!(
            md,
            "| {loss} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} |",
            mean(&a.own),
            median(&a.own),
            mean(&a.nearest_other),
            median(&a.nearest_other),
            mean(&a.nearest_other) - mean(&a.own)
        )?;
    }
    writeln!(md, "\n## Test-pair angles (degrees)\n")?;
    writeln!(md, "| loss | same: mean | different: mean | gap |")?;
    writeln!(md, "| --- | --- | --- | --- |")?;
    for (loss, a) in pair_angles {
        writeln!(md, "| {loss} | {:.1} | {:.1} | {:.1} |", mean(&a.same), mean(&a.different), mean(&a.different) - mean(&a.same))?;
    }
    if !toy.is_empty() {
        writeln!(md, "\n## 2-D toy (the 8 people with the most images)\n")?;
        writeln!(md, "A d -> 64 -> 2 projection trained with each loss (same scale and margin) over that loss's frozen")?;
        writeln!(md, "dev backbone; points are the unit 2-d embeddings, rays the class centers.\n")?;
        writeln!(md, "| loss | final loss | training accuracy | smallest angle between centers |")?;
        writeln!(md, "| --- | --- | --- | --- |")?;
        for (loss, t) in toy {
            writeln!(md, "| {loss} | {:.3} | {:.1}% | {:.1} |", t.loss, t.accuracy * 100.0, min_center_gap(&t.centers))?;
        }
    }
    writeln!(md, "\n## Figures\n")?;
    for (stem, _) in &svgs {
        writeln!(md, "![{stem}](figures/{stem}.png)\n")?;
    }
    writeln!(md, "Runs: {}", all_runs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))?;
    writeln!(md, "\nAccuracy table across runs, ROC overlay and training curves: `report/report.html`.")?;
    let md_path = out.join("study.md");
    std::fs::write(&md_path, &md).map_err(|e| StudyError::io(&md_path, e))?;

    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Softmax vs ArcFace</title>\
         <style>body{font-family:sans-serif;max-width:1250px;margin:auto;padding:1em}\
         table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:4px 8px}\
         svg{max-width:100%;height:auto}</style></head><body>",
    );
    html.push_str(&markdown_tables_to_html(&md));
    for (stem, svg) in &svgs {
        write!(html, "<h3>{stem}</h3><div>{}</div>", strip_xml_header(svg))?;
    }
    html.push_str("<p>Accuracy across runs, ROC overlay and training curves: <a href=\"report/report.html\">report/report.html</a></p></body></html>");
    let html_path = out.join("study.html");
    std::fs::write(&html_path, html).map_err(|e| StudyError::io(&html_path, e))?;
    Ok(html_path)
}

/// The smallest angle (degrees) between two of the 2-d class-center directions.
fn min_center_gap(centers: &[[f64; 2]]) -> f64 {
    let mut best = f64::INFINITY;
    for (i, a) in centers.iter().enumerate() {
        for b in &centers[i + 1..] {
            let cos = (a[0] * b[0] + a[1] * b[1]) / (a[0].hypot(a[1]) * b[0].hypot(b[1])).max(1e-12);
            best = best.min(cos.clamp(-1.0, 1.0).acos().to_degrees());
        }
    }
    best
}

fn strip_xml_header(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

/// The page's markdown (headings, paragraphs and pipe tables only) as HTML.
fn markdown_tables_to_html(md: &str) -> String {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut html = String::new();
    let mut in_table = false;
    for line in md.lines() {
        let t = line.trim();
        if t.starts_with('|') {
            if t.contains("---") {
                continue;
            }
            let cells: Vec<&str> = t.trim_matches('|').split('|').map(str::trim).collect();
            let tag = if in_table { "td" } else { "th" };
            if !in_table {
                html.push_str("<table>");
                in_table = true;
            }
            html.push_str("<tr>");
            for c in cells {
                let _ = write!(html, "<{tag}>{}</{tag}>", esc(c));
            }
            html.push_str("</tr>");
            continue;
        }
        if in_table {
            html.push_str("</table>");
            in_table = false;
        }
        if let Some(h) = t.strip_prefix("## ") {
            let _ = write!(html, "<h2>{}</h2>", esc(h));
        } else if let Some(h) = t.strip_prefix("# ") {
            let _ = write!(html, "<h1>{}</h1>", esc(h));
        } else if t.starts_with("![") || t.is_empty() {
        } else {
            let _ = write!(html, "<p>{}</p>", esc(t));
        }
    }
    if in_table {
        html.push_str("</table>");
    }
    html
}
