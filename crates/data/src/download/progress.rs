//! Progress reporting: an indicatif bar (bytes, rate, ETA) on a terminal, plain `tracing`
//! lines every 10% otherwise, so that logs of unattended runs stay readable.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Progress {
    /// A bar when stderr is a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// Always a bar.
    Bar,
    /// Plain log lines.
    Plain,
    /// Nothing but the final summary.
    Quiet,
}

impl Progress {
    /// Resolves `Auto` against the real stderr.
    fn resolved(self) -> Progress {
        match self {
            Progress::Auto if std::io::stderr().is_terminal() => Progress::Bar,
            Progress::Auto => Progress::Plain,
            other => other,
        }
    }

    /// Starts reporting on one transfer of `total` bytes (if known), `start` already done.
    pub fn start(self, label: &str, total: Option<u64>, start: u64) -> Reporter {
        let mode = self.resolved();
        let bar = (mode == Progress::Bar).then(|| {
            let bar = match total {
                Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
                None => ProgressBar::new_spinner(),
            };
            let template = if total.is_some() {
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}"
            } else {
                "{msg} {spinner} {bytes} {bytes_per_sec}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(label.to_string());
            bar.set_position(start);
            bar
        });
        Reporter {
            mode,
            bar,
            label: label.to_string(),
            total,
            done: start,
            start,
            started: Instant::now(),
            next_tenth: total.map_or(u64::MAX, |t| tenth_after(start, t)),
            last_line: Instant::now(),
        }
    }
}

fn tenth_after(done: u64, total: u64) -> u64 {
    if total == 0 {
        return u64::MAX;
    }
    (done * 10 / total + 1).min(10)
}

/// Reports one transfer; dropping it without `finish` leaves the bar abandoned.
pub struct Reporter {
    mode: Progress,
    bar: Option<ProgressBar>,
    label: String,
    total: Option<u64>,
    done: u64,
    start: u64,
    started: Instant,
    next_tenth: u64,
    last_line: Instant,
}

impl Reporter {
    /// Adds `n` bytes.
    pub fn inc(&mut self, n: u64) {
        self.done += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
            return;
        }
        if self.mode != Progress::Plain {
            return;
        }
        match self.total {
            Some(total) if total > 0 && self.done * 10 / total >= self.next_tenth => {
                self.next_tenth = tenth_after(self.done, total);
                if self.done < total {
                    tracing::info!(
                        "{}: {}% ({} of {} bytes)",
                        self.label,
                        self.done * 100 / total,
                        self.done,
                        total
                    );
                }
            }
            None if self.last_line.elapsed() > Duration::from_secs(10) => {
                self.last_line = Instant::now();
                tracing::info!("{}: {} bytes", self.label, self.done);
            }
            _ => {}
        }
    }

    /// Ends the report with a summary line.
    pub fn finish(self) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = (self.done - self.start) as f64 / secs / 1e6;
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.mode != Progress::Quiet {
            tracing::info!(
                "{}: {} bytes in {:.1} s ({:.1} MB/s)",
                self.label,
                self.done,
                secs,
                rate
            );
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
    }
}
