//! New output buffers that the kernels write in full, allocated without zero-filling them.
//!
//! With an allocator that keeps freed memory mapped (`crate::allocator`), `vec![0.0; n]`
//! is a memset over memory the kernel overwrites anyway (2-3% of an IResNet training step on
//! the CPU). Two ways to skip it, each with its own proof that every element is written:
//!
//! - [`par_collect`]: a chunk's values come from an exact-size iterator whose length is
//!   checked against the chunk, so nothing is left unwritten by construction;
//! - [`Unwritten`]: for kernels that write through raw pointers (the Winograd transform and
//!   the GEMM tiles); the caller states in an `unsafe` block that its work items cover the
//!   buffer. Debug builds hand out NaN-filled memory, so a missed element fails the kernel's
//!   parity tests instead of returning stale data.

use rayon::prelude::*;

/// A vector of `len` floats filled in parallel: chunk `i` (`chunk` floats, the last one
/// possibly shorter) holds the values of `f(i)`, which must yield exactly that many.
/// `min_chunks` is the fewest chunks one rayon task takes.
///
/// # Panics
/// If `f(i)` yields a different number of values than chunk `i` holds.
pub(crate) fn par_collect<I>(len: usize, chunk: usize, min_chunks: usize, f: impl Fn(usize) -> I + Sync) -> Vec<f32>
where
    I: ExactSizeIterator<Item = f32>,
{
    let mut out = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk.max(1))
        .with_min_len(min_chunks.max(1))
        .enumerate()
        .for_each(|(i, dst)| {
            let values = f(i);
            assert_eq!(values.len(), dst.len(), "chunk {i}: the values do not fill it");
            for (d, v) in dst.iter_mut().zip(values) {
                d.write(v);
            }
        });
    // SAFETY: every chunk of the first `len` elements was written in full (asserted above;
    // a panicking task never gets here).
    unsafe { out.set_len(len) };
    out
}

/// `len` floats for a kernel that writes every one of them through [`Self::as_mut_ptr`].
pub(crate) struct Unwritten {
    buf: Vec<f32>,
    len: usize,
}

impl Unwritten {
    /// Room for `len` floats: uninitialized in release builds, NaN in debug builds.
    pub(crate) fn new(len: usize) -> Self {
        let buf = if cfg!(debug_assertions) { vec![f32::NAN; len] } else { Vec::with_capacity(len) };
        Self { buf, len }
    }

    /// Where the kernel writes element 0 (valid for `len` floats).
    pub(crate) fn as_mut_ptr(&mut self) -> *mut f32 {
        self.buf.as_mut_ptr()
    }

    /// The written buffer.
    ///
    /// # Safety
    /// Every one of the `len` floats has been written through [`Self::as_mut_ptr`].
    pub(crate) unsafe fn assume_written(mut self) -> Vec<f32> {
        // SAFETY: the caller guarantees the writes; the capacity is at least `len`.
        unsafe { self.buf.set_len(self.len) };
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn par_collect_writes_every_chunk_including_a_short_last_one() {
        let v = par_collect(10, 4, 1, |i| {
            let n = if i == 2 { 2 } else { 4 };
            (0..n).map(move |j| (i * 4 + j) as f32)
        });
        assert_eq!(v, (0..10).map(|i| i as f32).collect::<Vec<_>>());
        assert!(par_collect(0, 4, 1, |_| std::iter::empty()).is_empty());
    }

    #[test]
    #[should_panic(expected = "do not fill it")]
    fn par_collect_refuses_a_chunk_left_short() {
        par_collect(8, 4, 1, |i| (0..if i == 1 { 3 } else { 4 }).map(|j| j as f32));
    }

    #[test]
    fn unwritten_becomes_what_was_written() {
        let mut out = Unwritten::new(5);
        let p = out.as_mut_ptr();
        for i in 0..5 {
            // SAFETY: `p` is valid for 5 floats.
            unsafe { p.add(i).write(i as f32) };
        }
        // SAFETY: all 5 were written.
        let v = unsafe { out.assume_written() };
        assert_eq!(v, [0., 1., 2., 3., 4.]);
    }

    #[test]
    fn debug_builds_start_from_nan_so_a_missed_element_shows() {
        let mut out = Unwritten::new(3);
        // SAFETY: the pointer is valid for 3 floats; only the first is written, which a
        // debug build allows (its buffer is already initialized).
        unsafe { out.as_mut_ptr().write(1.0) };
        if cfg!(debug_assertions) {
            // SAFETY: debug builds initialize every element.
            let v = unsafe { out.assume_written() };
            assert!(v[0] == 1.0 && v[1].is_nan() && v[2].is_nan());
        }
    }
}
