//! Criterion benchmarks live in `benches/benches/`; this crate only hosts them and gives each
//! the `arcface` binary's global allocator (mimalloc), so that they measure what it runs. A
//! bench links it with `use arcface_benches as _;`.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
