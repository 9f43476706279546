//! Strided matrix views, one thin wrapper over `gemm::gemm` and an output pointer shared by
//! parallel work items, used by every kernel of `fastconv`.

use gemm::Parallelism;

/// Strided matrix view for `gemm`: pointer plus row and column strides.
pub(super) struct Mat<T> {
    pub(super) ptr: T,
    pub(super) rs: isize,
    pub(super) cs: isize,
}

/// `dst (m x n) = [dst +] lhs (m x k) @ rhs (k x n)`.
pub(super) fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: Mat<*mut f32>,
    accumulate: bool,
    lhs: Mat<*const f32>,
    rhs: Mat<*const f32>,
    par: Parallelism,
) {
    // SAFETY: every caller passes pointers into live slices whose lengths cover the
    // strided m x n, m x k and k x n extents, and `dst` does not alias `lhs` or `rhs`.
    unsafe {
        gemm::gemm(
            m, n, k, dst.ptr, dst.cs, dst.rs, accumulate, lhs.ptr, lhs.cs, lhs.rs, rhs.ptr, rhs.cs,
            rhs.rs, 1.0f32, 1.0f32, false, false, false, par,
        )
    }
}

/// A row-major matrix whose rows are `cols` long.
pub(super) fn row_major<T>(ptr: T, cols: usize) -> Mat<T> {
    Mat {
        ptr,
        rs: cols as isize,
        cs: 1,
    }
}

/// The transpose of a row-major matrix whose rows are `rows_of_original` long.
pub(super) fn transposed<T>(ptr: T, rows_of_original: usize) -> Mat<T> {
    // Element (i, j) of the transpose is element (j, i) of the original.
    Mat {
        ptr,
        rs: 1,
        cs: rows_of_original as isize,
    }
}

/// An output buffer's pointer, shared by the parallel work items of one op; each item writes
/// its own disjoint block of the buffer, which outlives the items.
#[derive(Clone, Copy)]
pub(super) struct SharedOut(pub(super) *mut f32);
// SAFETY: the items that hold copies write disjoint elements, and the buffer outlives them.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// The pointer (a method, so that closures capture the whole `Send` value).
    pub(super) fn ptr(self) -> *mut f32 {
        self.0
    }
}
