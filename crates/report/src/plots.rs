//! Plots with plotters, as PNG (bitmap, text drawn with the bundled DejaVu Sans through
//! ab_glyph: no system fonts needed) or SVG (file or in-memory string for HTML reports):
//! ROC curves on a log-FAR axis (one run or an overlay of several), histograms of same and
//! different pair scores with the decision threshold, and training curves (loss, accuracy,
//! learning rate against step) from `metrics.jsonl`.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use arcface_eval::metrics::RocCurve;

/// DejaVu Sans (Bitstream Vera licence, see `assets/DejaVuSans-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bundled file is a valid TTF; a failure would only leave bitmap text blank.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// Where a plot goes.
pub enum PlotTarget<'a> {
    /// A file; `.svg` gives SVG, anything else PNG.
    File(&'a Path),
    /// An SVG document appended to this string (for inlining in HTML).
    Svg(&'a mut String),
}

/// Something drawable on any plotters backend.
pub trait Plot {
    /// Draws the plot onto `root`; errors are plotters' messages.
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String>;
}

/// Draws the series legend of `chart` (white translucent box, black border) at `position`.
pub fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
    font_size: u32,
) -> std::result::Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FAMILY, font_size))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// Renders `plot` at `size` pixels into `target`.
pub fn render<P: Plot>(plot: &P, size: (u32, u32), target: PlotTarget) -> Result<()> {
    register_font();
    match target {
        PlotTarget::File(path) => {
            let fail = |message: String| Error::Plot {
                path: path.to_path_buf(),
                message,
            };
            if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("svg"))
            {
                let root = SVGBackend::new(path, size).into_drawing_area();
                plot.draw(&root).map_err(fail)?;
                root.present().map_err(|e| fail(err(e)))
            } else {
                let root = BitMapBackend::new(path, size).into_drawing_area();
                plot.draw(&root).map_err(fail)?;
                root.present().map_err(|e| fail(err(e)))
            }
        }
        PlotTarget::Svg(buf) => {
            let fail = |message: String| Error::Plot {
                path: PathBuf::from("<svg string>"),
                message,
            };
            let root = SVGBackend::with_string(buf, size).into_drawing_area();
            plot.draw(&root).map_err(fail)?;
            root.present().map_err(|e| fail(err(e)))
        }
    }
}

/// A fixed palette that stays distinguishable for up to ten runs.
pub fn palette(i: usize) -> RGBColor {
    const C: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    C[i % C.len()]
}

/// ROC curves (TAR against log FAR), one per named run.
pub struct RocPlot<'a> {
    /// Title above the chart.
    pub title: String,
    /// Named curves.
    pub curves: Vec<(String, &'a RocCurve)>,
}

impl Plot for RocPlot<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        // The smallest non-zero FAR any curve reaches, so the left edge shows real points.
        let min_far = self
            .curves
            .iter()
            .flat_map(|(_, r)| r.far.iter().copied())
            .filter(|&f| f > 0.0)
            .fold(1.0f64, f64::min)
            .clamp(1e-6, 1e-2);
        let lo = 10f64.powf(min_far.log10().floor());
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 22))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d((lo..1.0f64).log_scale(), 0.0f64..1.0)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("FAR (log scale)")
            .y_desc("TAR")
            .x_label_formatter(&|x| format!("{x:.0e}"))
            .label_style((FAMILY, 14))
            .draw()
            .map_err(err)?;
        for (i, (name, roc)) in self.curves.iter().enumerate() {
            let color = palette(i);
            let points = roc
                .far
                .iter()
                .zip(&roc.tar)
                .filter(|(f, _)| **f >= lo)
                .map(|(f, t)| (*f, *t));
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(err)?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight, 14)?;
        Ok(())
    }
}

/// Histograms of same-person and different-person scores with the decision threshold.
pub struct HistPlot<'a> {
    /// Title above the chart.
    pub title: String,
    /// Pair scores.
    pub scores: &'a [f64],
    /// Pair labels.
    pub same: &'a [bool],
    /// Decision threshold drawn as a vertical line.
    pub threshold: Option<f64>,
    /// Number of bins.
    pub bins: usize,
    /// Axis label for the scores.
    pub x_label: String,
}

impl Plot for HistPlot<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let bins = self.bins.max(1);
        let lo = self.scores.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = self
            .scores
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if lo.is_finite() && hi > lo {
            (lo, hi)
        } else {
            (lo.min(0.0) - 0.5, lo.max(0.0) + 0.5)
        };
        let width = (hi - lo) / bins as f64;
        let mut counts = [vec![0usize; bins], vec![0usize; bins]];
        for (&s, &y) in self.scores.iter().zip(self.same) {
            let b = (((s - lo) / width) as usize).min(bins - 1);
            counts[usize::from(y)][b] += 1;
        }
        let totals = [
            counts[0].iter().sum::<usize>().max(1),
            counts[1].iter().sum::<usize>().max(1),
        ];
        // Normalized to a fraction per bin so unequal class sizes compare.
        let frac = |k: usize, b: usize| counts[k][b] as f64 / totals[k] as f64;
        let top = (0..bins)
            .flat_map(|b| [frac(0, b), frac(1, b)])
            .fold(0.0f64, f64::max)
            * 1.1;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 22))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(lo..hi, 0.0..top.max(1e-3))
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc("fraction of pairs")
            .label_style((FAMILY, 14))
            .draw()
            .map_err(err)?;
        for (k, (name, color)) in [
            ("different", RGBColor(214, 39, 40)),
            ("same", RGBColor(44, 160, 44)),
        ]
        .into_iter()
        .enumerate()
        {
            let bars = (0..bins).map(|b| {
                let x0 = lo + b as f64 * width;
                Rectangle::new(
                    [(x0, 0.0), (x0 + width, frac(k, b))],
                    color.mix(0.45).filled(),
                )
            });
            chart
                .draw_series(bars)
                .map_err(err)?
                .label(format!("{name} ({})", counts[k].iter().sum::<usize>()))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 15, y + 5)], color.mix(0.45).filled())
                });
        }
        if let Some(t) = self.threshold {
            chart
                .draw_series(LineSeries::new([(t, 0.0), (t, top)], BLACK.stroke_width(2)))
                .map_err(err)?
                .label(format!("threshold {t:.3}"))
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2))
                });
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft, 14)?;
        Ok(())
    }
}

/// One run's training history for [`CurvesPlot`].
#[derive(Debug, Clone, Default)]
pub struct Curves {
    /// Run name (legend).
    pub name: String,
    /// (step, loss) of training lines.
    pub loss: Vec<(f64, f64)>,
    /// (step, accuracy) of training lines.
    pub train_accuracy: Vec<(f64, f64)>,
    /// (step, accuracy) of validation lines.
    pub val_accuracy: Vec<(f64, f64)>,
    /// (step, learning rate).
    pub lr: Vec<(f64, f64)>,
}

/// Loss, accuracy (training solid, validation dashed with dots) and learning rate against
/// step, stacked in three panels, one color per run.
pub struct CurvesPlot<'a> {
    /// Title above the panels.
    pub title: String,
    /// Runs to draw.
    pub runs: &'a [Curves],
}

fn range(points: impl Iterator<Item = (f64, f64)>) -> Option<((f64, f64), (f64, f64))> {
    let mut r: Option<((f64, f64), (f64, f64))> = None;
    for (x, y) in points.filter(|(x, y)| x.is_finite() && y.is_finite()) {
        r = Some(match r {
            None => ((x, x), (y, y)),
            Some(((x0, x1), (y0, y1))) => ((x0.min(x), x1.max(x)), (y0.min(y), y1.max(y))),
        });
    }
    r.map(|((x0, x1), (y0, y1))| {
        let pad = ((y1 - y0) * 0.05).max(1e-9);
        (
            (x0, if x1 > x0 { x1 } else { x0 + 1.0 }),
            (y0 - pad, y1 + pad),
        )
    })
}

/// Picks the point lists of one panel from a run (the first solid, the rest validation).
type SeriesOf = dyn Fn(&Curves) -> Vec<&Vec<(f64, f64)>>;

impl CurvesPlot<'_> {
    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        label: &str,
        legend: SeriesLabelPosition,
        series: &SeriesOf,
    ) -> std::result::Result<(), String> {
        let all = self
            .runs
            .iter()
            .flat_map(|r| series(r).into_iter().flatten().copied());
        let Some(((x0, x1), (y0, y1))) = range(all) else {
            return area
                .draw(&Text::new(
                    format!("{label}: no data"),
                    (20, 20),
                    (FAMILY, 16),
                ))
                .map_err(err);
        };
        let mut chart = ChartBuilder::on(area)
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(65)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc(label)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.3}"))
            .label_style((FAMILY, 13))
            .draw()
            .map_err(err)?;
        for (i, run) in self.runs.iter().enumerate() {
            let color = palette(i);
            for (j, s) in series(run).into_iter().enumerate() {
                if s.is_empty() {
                    continue;
                }
                if j == 0 {
                    chart
                        .draw_series(LineSeries::new(s.iter().copied(), color.stroke_width(2)))
                        .map_err(err)?
                        .label(run.name.clone())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                        });
                } else {
                    // Validation: sparse points, drawn as dashed line plus markers.
                    chart
                        .draw_series(DashedLineSeries::new(
                            s.iter().copied(),
                            6,
                            4,
                            color.stroke_width(1),
                        ))
                        .map_err(err)?;
                    chart
                        .draw_series(s.iter().map(|&p| Circle::new(p, 4, color.filled())))
                        .map_err(err)?
                        .label(format!("{} (val)", run.name))
                        .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
                }
            }
        }
        draw_legend(&mut chart, legend, 13)?;
        Ok(())
    }
}

impl Plot for CurvesPlot<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(&self.title, (FAMILY, 22)).map_err(err)?;
        let panels = root.split_evenly((3, 1));
        use SeriesLabelPosition::{LowerRight, UpperRight};
        self.panel(&panels[0], "loss", UpperRight, &|r| vec![&r.loss])?;
        self.panel(&panels[1], "accuracy", LowerRight, &|r| {
            vec![&r.train_accuracy, &r.val_accuracy]
        })?;
        self.panel(&panels[2], "learning rate", UpperRight, &|r| vec![&r.lr])?;
        Ok(())
    }
}
