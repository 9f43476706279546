//! Progress display, drawn only here: the libraries report tasks through
//! `arcface_data::Progress`, and the binary decides how they look. On a terminal every task
//! is an indicatif bar (items with elapsed time and ETA, bytes with rate and ETA, a spinner
//! when the total is unknown); otherwise the libraries' plain lines (`Progress::Lines`).

use std::io::IsTerminal;

use arcface_data::{Progress, ProgressSink, Task, TaskProgress, Unit};
use indicatif::{ProgressBar, ProgressStyle};

/// What every command passes to the libraries: bars on a terminal, plain lines otherwise.
pub fn auto() -> Progress {
    if std::io::stderr().is_terminal() {
        Progress::sink(Bars)
    } else {
        Progress::Lines
    }
}

/// Draws each task as an indicatif bar on stderr.
struct Bars;

impl ProgressSink for Bars {
    fn start(&self, task: &Task) -> Box<dyn TaskProgress> {
        let bar = match task.total {
            Some(total) => ProgressBar::new(total),
            None => ProgressBar::new_spinner(),
        };
        let template = match (task.total.is_some(), task.unit) {
            (true, Unit::Items) => {
                "{prefix} [{bar:30}] {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}"
            }
            (true, Unit::Bytes) => {
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}"
            }
            (false, Unit::Items) => "{prefix} {spinner} {pos} [{elapsed_precise}] {msg}",
            (false, Unit::Bytes) => "{prefix} {spinner} {bytes} {bytes_per_sec} {msg}",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(task.label.clone());
        bar.set_position(task.done);
        // Rate and ETA count from here, not from zero (a resumed run or transfer).
        bar.reset_eta();
        Box::new(Bar(bar))
    }
}

/// One task's bar.
struct Bar(ProgressBar);

impl TaskProgress for Bar {
    fn set(&self, done: u64) {
        self.0.set_position(done);
    }

    fn message(&self, msg: &str) {
        self.0.set_message(msg.to_string());
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }

    fn abandon(&self) {
        self.0.abandon();
    }
}
