//! Criterion benchmarks live in `benches/benches/`; this crate only hosts them and runs each on
//! the `arcface` binary's allocator, set up as the binary sets it up, so that they measure
//! what it runs: every bench group takes its configuration from [`criterion`].

use arcface_kernels::allocator::{keep_freed_memory, MiMalloc};
use criterion::Criterion;

#[global_allocator]
static ALLOCATOR: MiMalloc = MiMalloc;

/// Criterion's default configuration, after setting the allocator up as the binary does.
pub fn criterion() -> Criterion {
    keep_freed_memory();
    Criterion::default()
}
