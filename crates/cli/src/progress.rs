//! Progress display, drawn only here: libraries report `(done, total)` through
//! `arcface_data::Progress`, and the binary decides how it looks (an indicatif bar on a
//! terminal, a plain line every 10% otherwise).

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use arcface_data::Progress;
use indicatif::{ProgressBar, ProgressStyle};

/// A progress sink for a library call: a bar on a terminal, plain lines on stderr otherwise.
pub fn bar() -> Progress {
    if !std::io::stderr().is_terminal() {
        return Progress::Auto;
    }
    // The bar is made on the first report, when the total is known.
    let bar: Mutex<Option<ProgressBar>> = Mutex::new(None);
    Progress::Callback(Arc::new(move |done, total| {
        let mut bar = bar.lock().unwrap_or_else(|e| e.into_inner());
        let b = bar.get_or_insert_with(|| {
            let b = ProgressBar::new(total as u64);
            if let Ok(style) = ProgressStyle::with_template("[{bar:40}] {pos}/{len} ({per_sec}, eta {eta})") {
                b.set_style(style.progress_chars("=> "));
            }
            b
        });
        b.set_position(done as u64);
        if done >= total {
            b.finish_and_clear();
            *bar = None;
        }
    }))
}
