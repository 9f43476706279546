//! Graceful stop on SIGINT/SIGTERM: a flag set by the handler and checked between steps, so
//! the loop writes a checkpoint and returns instead of dying mid-step.
//!
//! Uses `signal-hook`'s flag registration (async-signal-safe: the handler only stores a bool).
//! A second signal while the first is being handled terminates the process, so Ctrl-C twice
//! still kills a stuck run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Result, TrainError};

/// Shared stop request.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// A flag that nothing sets until [`StopFlag::install`] or [`StopFlag::request`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers SIGINT and SIGTERM handlers that set this flag (and exit on a second signal).
    pub fn install(&self) -> Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        for sig in [SIGINT, SIGTERM] {
            // Order matters: the conditional shutdown must be registered before the flag.
            signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&self.0))
                .map_err(|e| TrainError::io("<signal handler>", e))?;
            signal_hook::flag::register(sig, Arc::clone(&self.0))
                .map_err(|e| TrainError::io("<signal handler>", e))?;
        }
        Ok(())
    }

    /// Asks the loop to stop (as a signal would).
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was requested.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
