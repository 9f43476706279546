//! mimalloc, set up for these kernels, for a program to install as its global allocator (the
//! `arcface` binary and the benches do; a library leaves that choice to its program):
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: arcface_kernels::allocator::MiMalloc = arcface_kernels::allocator::MiMalloc;
//! fn main() {
//!     arcface_kernels::allocator::keep_freed_memory();
//! }
//! ```
//!
//! A training step allocates and frees the same large activation and gradient buffers every
//! step. glibc unmaps them and mimalloc by default decommits them a second after they are freed,
//! so the next step faults every page back in and the kernel zeroes it: about a million page
//! faults per IResNet-34 step at batch 32. Kept mapped, the pages are reused as they are.

pub use mimalloc::MiMalloc;

use libmimalloc_sys::mi_option_t;

/// `mi_option_purge_delay`: its place in `mi_option_t` (mimalloc.h; the crate's bindings do
/// not name it). Milliseconds between freeing memory and returning it to the OS; -1 never.
const PURGE_DELAY: mi_option_t = 15;

/// Environment variable through which mimalloc reads the same option; when it is set, the
/// user's value stands.
const PURGE_DELAY_ENV: &str = "MIMALLOC_PURGE_DELAY";

/// Keeps freed memory mapped for reuse instead of returning it to the OS: the resident size
/// stays at the program's peak, as with PyTorch's caching allocators. Does nothing when
/// `MIMALLOC_PURGE_DELAY` is set. Call it first thing in `main`.
pub fn keep_freed_memory() {
    if std::env::var_os(PURGE_DELAY_ENV).is_none() {
        // SAFETY: mi_option_set only stores the value; mimalloc reads it at its next purge.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
    }
}

/// The purge delay in milliseconds that mimalloc uses now (-1: never).
pub fn purge_delay_ms() -> i64 {
    // SAFETY: reading an option has no preconditions.
    unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) as i64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_delay_is_the_option_mimalloc_documents_and_can_be_turned_off() {
        if std::env::var_os(PURGE_DELAY_ENV).is_some() {
            eprintln!("skipped: {PURGE_DELAY_ENV} is set");
            return;
        }
        // mimalloc's options.c sets 1000 ms; the options beside it in the enum default to 1
        // and 0, so this also checks the hard-coded position.
        assert_eq!(purge_delay_ms(), 1000);
        keep_freed_memory();
        assert_eq!(purge_delay_ms(), -1);
    }
}
