//! How long work reports how far it has come: the image-cache build, embedding passes,
//! downloads and extraction, the training loop. Libraries only report; what the report looks
//! like is the caller's choice, made once as a [`Progress`] value. [`Progress::Lines`] (the
//! default) writes a plain `tracing` line at each tenth of the work (every 10 s when the
//! total is unknown), so logs of unattended runs stay readable; [`Progress::Sink`] hands every
//! update to a [`ProgressSink`] the binary implements (a terminal bar, say); nothing in the
//! library crates draws.
//!
//! A finished byte transfer is also summarized in one line (bytes, seconds, MB/s) unless the
//! progress is [`Progress::Silent`].

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a task counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unit {
    /// Images, steps, batches.
    #[default]
    Items,
    /// Bytes of a transfer (sinks show sizes and rates).
    Bytes,
}

/// One piece of long work, as it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// What is being done ("preprocessing images", a file name).
    pub label: String,
    /// How much there is to do, when known.
    pub total: Option<u64>,
    /// How much was already done before this start (a resumed download or run).
    pub done: u64,
    /// What `total` and `done` count.
    pub unit: Unit,
}

impl Task {
    /// `total` items, none done yet.
    pub fn items(label: impl Into<String>, total: u64) -> Self {
        Task {
            label: label.into(),
            total: Some(total),
            done: 0,
            unit: Unit::Items,
        }
    }

    /// A transfer of `total` bytes (if known), none done yet.
    pub fn bytes(label: impl Into<String>, total: Option<u64>) -> Self {
        Task {
            label: label.into(),
            total,
            done: 0,
            unit: Unit::Bytes,
        }
    }

    /// The same task with `done` already done.
    pub fn starting_at(self, done: u64) -> Self {
        Task { done, ..self }
    }
}

/// Receives the progress of tasks; implemented by the binary (bars) or by tests.
pub trait ProgressSink: Send + Sync {
    /// A task starts; the returned handle receives its updates.
    fn start(&self, task: &Task) -> Box<dyn TaskProgress>;
}

/// The updates of one started task. Calls may come from several threads.
pub trait TaskProgress: Send + Sync {
    /// `done` of the task's total is done (never less than an earlier `set`).
    fn set(&self, done: u64);
    /// A short status to show next to the position (the training loop's loss and rate).
    fn message(&self, _msg: &str) {}
    /// The task completed.
    fn finish(&self);
    /// The task stopped early (an error); a bar stays where it was.
    fn abandon(&self) {}
}

/// Where long work reports how far it has come. Libraries report; only the binary draws.
#[derive(Clone, Default)]
pub enum Progress {
    /// Report nothing.
    Silent,
    /// A plain `tracing` line at each tenth of the work (every 10 s without a total).
    #[default]
    Lines,
    /// Every update goes to this sink.
    Sink(Arc<dyn ProgressSink>),
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Progress::Silent => "Silent",
            Progress::Lines => "Lines",
            Progress::Sink(_) => "Sink(..)",
        })
    }
}

impl Progress {
    /// Reports to `sink`.
    pub fn sink(sink: impl ProgressSink + 'static) -> Self {
        Progress::Sink(Arc::new(sink))
    }

    /// Whether a sink shows progress, so that plain log lines should stay out of its way
    /// (a bar owns the terminal).
    pub fn is_sink(&self) -> bool {
        matches!(self, Progress::Sink(_))
    }

    /// Starts reporting on `task`.
    pub fn start(&self, task: Task) -> Reporter {
        let inner: Box<dyn TaskProgress> = match self {
            Progress::Silent => Box::new(Nothing),
            Progress::Lines => Box::new(Lines::new(&task)),
            Progress::Sink(sink) => sink.start(&task),
        };
        Reporter {
            inner,
            summarize: task.unit == Unit::Bytes && !matches!(self, Progress::Silent),
            start: task.done,
            done: AtomicU64::new(task.done),
            started: Instant::now(),
            finished: AtomicBool::new(false),
            label: task.label,
        }
    }
}

/// A started task, shareable across threads; dropping it unfinished abandons the task.
pub struct Reporter {
    inner: Box<dyn TaskProgress>,
    summarize: bool,
    label: String,
    start: u64,
    done: AtomicU64,
    started: Instant,
    finished: AtomicBool,
}

impl Reporter {
    /// `done` is done in total. Parallel workers may report out of order; the largest
    /// position so far is what the sink sees.
    pub fn set(&self, done: u64) {
        let done = self.done.fetch_max(done, Ordering::Relaxed).max(done);
        self.inner.set(done);
    }

    /// `n` more are done.
    pub fn inc(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        self.inner.set(done);
    }

    /// Shows a short status next to the position.
    pub fn message(&self, msg: &str) {
        self.inner.message(msg);
    }

    /// Ends the task (with a summary line for byte transfers).
    pub fn finish(&self) {
        if self.finished.swap(true, Ordering::Relaxed) {
            return;
        }
        self.inner.finish();
        if self.summarize {
            let done = self.done.load(Ordering::Relaxed);
            let secs = self.started.elapsed().as_secs_f64().max(1e-3);
            let rate = done.saturating_sub(self.start) as f64 / secs / 1e6;
            tracing::info!(
                "{}: {done} bytes in {secs:.1} s ({rate:.1} MB/s)",
                self.label
            );
        }
    }

    /// Ends the task early, leaving a bar where it stopped.
    pub fn abandon(&self) {
        if !self.finished.swap(true, Ordering::Relaxed) {
            self.inner.abandon();
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.abandon();
    }
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reporter")
            .field("label", &self.label)
            .field("done", &self.done)
            .finish()
    }
}

/// [`Progress::Silent`]'s handle.
struct Nothing;

impl TaskProgress for Nothing {
    fn set(&self, _done: u64) {}
    fn finish(&self) {}
}

/// When [`Progress::Lines`] writes: the first position in each new tenth of the total,
/// below the end (an item count also at the end; a transfer's end has its summary line);
/// without a total, once `every` has passed since the last line.
#[derive(Debug)]
struct Cadence {
    total: Option<u64>,
    unit: Unit,
    next_tenth: u64,
    every: Duration,
    last: Instant,
}

impl Cadence {
    fn new(task: &Task, every: Duration, now: Instant) -> Self {
        let next_tenth = task
            .total
            .filter(|&t| t > 0)
            .map_or(u64::MAX, |t| task.done * 10 / t + 1);
        Cadence {
            total: task.total,
            unit: task.unit,
            next_tenth,
            every,
            last: now,
        }
    }

    fn due(&mut self, done: u64, now: Instant) -> bool {
        match self.total {
            Some(0) => false,
            Some(total) if done >= total => {
                let due = self.unit == Unit::Items && self.next_tenth <= 10;
                self.next_tenth = u64::MAX;
                due
            }
            Some(total) if done * 10 / total >= self.next_tenth => {
                self.next_tenth = done * 10 / total + 1;
                true
            }
            Some(_) => false,
            None if now.duration_since(self.last) >= self.every => {
                self.last = now;
                true
            }
            None => false,
        }
    }
}

/// [`Progress::Lines`]'s handle.
struct Lines {
    label: String,
    total: Option<u64>,
    unit: Unit,
    cadence: Mutex<Cadence>,
}

impl Lines {
    fn new(task: &Task) -> Self {
        let cadence = Cadence::new(task, Duration::from_secs(10), Instant::now());
        Lines {
            label: task.label.clone(),
            total: task.total,
            unit: task.unit,
            cadence: Mutex::new(cadence),
        }
    }
}

impl TaskProgress for Lines {
    fn set(&self, done: u64) {
        let due = self
            .cadence
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .due(done, Instant::now());
        if !due {
            return;
        }
        let label = &self.label;
        match (self.total, self.unit) {
            (Some(total), Unit::Items) => tracing::info!("{label}: {done}/{total}"),
            (Some(total), Unit::Bytes) => {
                tracing::info!("{label}: {}% ({done} of {total} bytes)", done * 100 / total)
            }
            (None, Unit::Items) => tracing::info!("{label}: {done}"),
            (None, Unit::Bytes) => tracing::info!("{label}: {done} bytes"),
        }
    }

    fn finish(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_at(task: &Task, steps: impl IntoIterator<Item = u64>) -> Vec<u64> {
        let now = Instant::now();
        let mut c = Cadence::new(task, Duration::from_secs(10), now);
        steps.into_iter().filter(|&d| c.due(d, now)).collect()
    }

    #[test]
    fn lines_come_once_per_tenth_and_once_at_the_end() {
        let task = Task::items("x", 95);
        let expected = vec![10, 19, 29, 38, 48, 57, 67, 76, 86, 95];
        assert_eq!(lines_at(&task, 1..=95), expected);
        // Coarse updates skipping tenths still give one line each.
        assert_eq!(lines_at(&task, [50, 60, 95, 95]), vec![50, 60, 95]);
    }

    #[test]
    fn a_transfer_ends_without_a_percent_line_and_a_resume_skips_done_tenths() {
        let task = Task::bytes("f", Some(100)).starting_at(35);
        assert_eq!(
            lines_at(&task, (36..=100).step_by(5).chain([100])),
            vec![41, 51, 61, 71, 81, 91]
        );
    }

    #[test]
    fn unknown_totals_report_by_time() {
        let t0 = Instant::now();
        let mut c = Cadence::new(&Task::bytes("f", None), Duration::from_secs(10), t0);
        assert!(!c.due(5, t0 + Duration::from_secs(9)));
        assert!(c.due(6, t0 + Duration::from_secs(10)));
        assert!(!c.due(7, t0 + Duration::from_secs(15)));
        assert!(c.due(8, t0 + Duration::from_secs(21)));
    }

    #[test]
    fn the_reporter_forwards_the_largest_position_and_abandons_on_drop() {
        #[derive(Default)]
        struct Log(Mutex<Vec<String>>);
        struct Handle(Arc<Log>);
        impl TaskProgress for Handle {
            fn set(&self, done: u64) {
                self.0 .0.lock().unwrap().push(format!("set {done}"));
            }
            fn finish(&self) {
                self.0 .0.lock().unwrap().push("finish".into());
            }
            fn abandon(&self) {
                self.0 .0.lock().unwrap().push("abandon".into());
            }
        }
        struct Sink(Arc<Log>);
        impl ProgressSink for Sink {
            fn start(&self, task: &Task) -> Box<dyn TaskProgress> {
                self.0
                     .0
                    .lock()
                    .unwrap()
                    .push(format!("start {} {:?}", task.label, task.total));
                Box::new(Handle(self.0.clone()))
            }
        }
        let log = Arc::new(Log::default());
        let progress = Progress::sink(Sink(log.clone()));
        let r = progress.start(Task::items("a", 3));
        r.set(2);
        r.set(1);
        r.inc(1);
        r.finish();
        drop(r);
        drop(progress.start(Task::items("b", 1)));
        let got = log.0.lock().unwrap().clone();
        assert_eq!(
            got,
            [
                "start a Some(3)",
                "set 2",
                "set 2",
                "set 3",
                "finish",
                "start b Some(1)",
                "abandon"
            ]
        );
        assert_eq!(format!("{:?}", Progress::default()), "Lines");
    }
}
