//! Slice-level kernels of the fast convolution: im2col, col2im and the three GEMMs
//! (forward, input gradient, weight gradient), parallel over images with rayon.
//!
//! Reference: Chellapilla et al., "High Performance Convolutional Neural Networks for
//! Document Processing" (2006), the im2col + GEMM lowering used by Caffe and PyTorch's
//! CPU `slow_conv2d`. The column matrix of one image is `(C*kh*kw) x (Ho*Wo)`, rows ordered
//! `(c, ky, kx)`, so that the OIHW weight is already its `K x (C*kh*kw)` left operand.

use gemm::Parallelism;
use rayon::prelude::*;

use super::Geometry;

/// How one image's work is run: either images go to different threads and each GEMM is
/// single-threaded, or images go one after another and every GEMM uses all threads.
#[derive(Clone, Copy)]
struct Plan {
    images_in_parallel: bool,
    gemm: Parallelism,
}

impl Plan {
    fn new(batch: usize) -> Self {
        let threads = rayon::current_num_threads().max(1);
        // With at least one image per thread, per-image GEMMs avoid gemm's fork/join cost
        // and keep each thread's column buffer in its own cache.
        if batch >= threads || threads == 1 {
            Plan {
                images_in_parallel: true,
                gemm: Parallelism::None,
            }
        } else {
            Plan {
                images_in_parallel: false,
                gemm: Parallelism::Rayon(threads),
            }
        }
    }
}

/// Range of output columns `ox` whose input column `ox*s + kx - pad` lies in `0..w`.
fn valid_ox(g: &Geometry, kx: usize) -> (usize, usize) {
    let s = g.stride;
    let lo = if g.pad > kx {
        (g.pad - kx).div_ceil(s)
    } else {
        0
    };
    let hi = if g.w + g.pad > kx {
        (g.w + g.pad - kx).div_ceil(s)
    } else {
        0
    };
    (lo.min(g.wo), hi.min(g.wo).max(lo.min(g.wo)))
}

/// Input row of output row `oy` for kernel row `ky`, if it is inside the image.
fn input_row(g: &Geometry, oy: usize, ky: usize) -> Option<usize> {
    let iy = (oy * g.stride + ky).checked_sub(g.pad)?;
    (iy < g.h).then_some(iy)
}

/// Writes the `kh*kw` column rows of one input channel plane (`h*w`) into `rows`.
fn im2col_channel(g: &Geometry, plane: &[f32], rows: &mut [f32]) {
    let p = g.ho * g.wo;
    for ky in 0..g.kh {
        for kx in 0..g.kw {
            let row = &mut rows[(ky * g.kw + kx) * p..][..p];
            let (lo, hi) = valid_ox(g, kx);
            for oy in 0..g.ho {
                let dst = &mut row[oy * g.wo..][..g.wo];
                let Some(iy) = input_row(g, oy, ky) else {
                    dst.fill(0.0);
                    continue;
                };
                dst[..lo].fill(0.0);
                dst[hi..].fill(0.0);
                if hi > lo {
                    let src = &plane[iy * g.w..][..g.w];
                    let ix0 = lo * g.stride + kx - g.pad;
                    if g.stride == 1 {
                        dst[lo..hi].copy_from_slice(&src[ix0..ix0 + (hi - lo)]);
                    } else {
                        for (j, d) in dst[lo..hi].iter_mut().enumerate() {
                            *d = src[ix0 + j * g.stride];
                        }
                    }
                }
            }
        }
    }
}

/// Adds the `kh*kw` column rows of one channel back into its (zeroed or partial) plane.
fn col2im_channel(g: &Geometry, rows: &[f32], plane: &mut [f32]) {
    let p = g.ho * g.wo;
    for ky in 0..g.kh {
        for kx in 0..g.kw {
            let row = &rows[(ky * g.kw + kx) * p..][..p];
            let (lo, hi) = valid_ox(g, kx);
            if hi <= lo {
                continue;
            }
            for oy in 0..g.ho {
                let Some(iy) = input_row(g, oy, ky) else {
                    continue;
                };
                let src = &row[oy * g.wo + lo..oy * g.wo + hi];
                let dst = &mut plane[iy * g.w..][..g.w];
                let ix0 = lo * g.stride + kx - g.pad;
                if g.stride == 1 {
                    for (d, s) in dst[ix0..ix0 + (hi - lo)].iter_mut().zip(src) {
                        *d += *s;
                    }
                } else {
                    for (j, s) in src.iter().enumerate() {
                        dst[ix0 + j * g.stride] += *s;
                    }
                }
            }
        }
    }
}

/// Column matrix of one image (`x_img` is `C*H*W`); channels in parallel when asked.
fn im2col(g: &Geometry, x_img: &[f32], col: &mut [f32], parallel: bool) {
    let rows_len = g.kh * g.kw * g.ho * g.wo;
    let plane_len = g.h * g.w;
    if parallel {
        col.par_chunks_mut(rows_len)
            .zip(x_img.par_chunks(plane_len))
            .for_each(|(rows, plane)| im2col_channel(g, plane, rows));
    } else {
        for (rows, plane) in col.chunks_mut(rows_len).zip(x_img.chunks(plane_len)) {
            im2col_channel(g, plane, rows);
        }
    }
}

/// Accumulates one image's column gradient into its zeroed input gradient `dx_img`.
fn col2im(g: &Geometry, col: &[f32], dx_img: &mut [f32], parallel: bool) {
    let rows_len = g.kh * g.kw * g.ho * g.wo;
    let plane_len = g.h * g.w;
    if parallel {
        dx_img
            .par_chunks_mut(plane_len)
            .zip(col.par_chunks(rows_len))
            .for_each(|(plane, rows)| col2im_channel(g, rows, plane));
    } else {
        for (plane, rows) in dx_img.chunks_mut(plane_len).zip(col.chunks(rows_len)) {
            col2im_channel(g, rows, plane);
        }
    }
}

/// Row-major matrix view for `gemm`: pointer plus row and column strides.
struct Mat<T> {
    ptr: T,
    rs: isize,
    cs: isize,
}

/// `dst (m x n) = [dst +] lhs (m x k) @ rhs (k x n)`.
#[allow(clippy::too_many_arguments)]
fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: Mat<*mut f32>,
    accumulate: bool,
    lhs: Mat<*const f32>,
    rhs: Mat<*const f32>,
    par: Parallelism,
) {
    // SAFETY: every caller passes pointers into live slices whose lengths cover the
    // strided m x n, m x k and k x n extents (checked by the debug asserts at call sites),
    // and `dst` does not alias `lhs` or `rhs`.
    unsafe {
        gemm::gemm(
            m, n, k, dst.ptr, dst.cs, dst.rs, accumulate, lhs.ptr, lhs.cs, lhs.rs, rhs.ptr, rhs.cs,
            rhs.rs, 1.0f32, 1.0f32, false, false, false, par,
        )
    }
}

fn row_major<T>(ptr: T, cols: usize) -> Mat<T> {
    Mat {
        ptr,
        rs: cols as isize,
        cs: 1,
    }
}

fn transposed<T>(ptr: T, rows_of_original: usize) -> Mat<T> {
    // Element (i, j) of the transpose is element (j, i) of a row-major matrix whose rows
    // are `rows_of_original` long.
    Mat {
        ptr,
        rs: 1,
        cs: rows_of_original as isize,
    }
}

/// Runs `f(image, out_chunk, scratch)` over images, reusing one scratch column per task.
fn for_each_image<F>(plan: Plan, out: &mut [f32], chunk: usize, scratch_len: usize, f: F)
where
    F: Fn(usize, &mut [f32], &mut [f32]) + Sync,
{
    if plan.images_in_parallel {
        out.par_chunks_mut(chunk).enumerate().for_each_init(
            || vec![0f32; scratch_len],
            |scratch, (i, o)| f(i, o, scratch),
        );
    } else {
        let mut scratch = vec![0f32; scratch_len];
        for (i, o) in out.chunks_mut(chunk).enumerate() {
            f(i, o, &mut scratch);
        }
    }
}

/// Forward: `y_n (K x P) = W (K x CKK) @ col(x_n) (CKK x P)` for every image.
pub(super) fn forward(g: &Geometry, x: &[f32], w: &[f32]) -> Vec<f32> {
    let (p, ckk) = (g.ho * g.wo, g.c * g.kh * g.kw);
    let (x_len, y_len) = (g.c * g.h * g.w, g.k * p);
    debug_assert_eq!((x.len(), w.len()), (g.n * x_len, g.k * ckk));
    let mut y = vec![0f32; g.n * y_len];
    let plan = Plan::new(g.n);
    let scratch = if g.is_pointwise() { 0 } else { ckk * p };
    for_each_image(plan, &mut y, y_len, scratch, |i, y_img, col| {
        let x_img = &x[i * x_len..][..x_len];
        let col: &[f32] = if g.is_pointwise() {
            x_img
        } else {
            im2col(g, x_img, col, !plan.images_in_parallel);
            col
        };
        matmul(
            (g.k, p, ckk),
            row_major(y_img.as_mut_ptr(), p),
            false,
            row_major(w.as_ptr(), ckk),
            row_major(col.as_ptr(), p),
            plan.gemm,
        );
    });
    y
}

/// Input gradient: `dcol_n (CKK x P) = W^T (CKK x K) @ dy_n (K x P)`, then col2im.
pub(super) fn backward_input(g: &Geometry, w: &[f32], dy: &[f32]) -> Vec<f32> {
    let (p, ckk) = (g.ho * g.wo, g.c * g.kh * g.kw);
    let (x_len, y_len) = (g.c * g.h * g.w, g.k * p);
    debug_assert_eq!((dy.len(), w.len()), (g.n * y_len, g.k * ckk));
    let mut dx = vec![0f32; g.n * x_len];
    let plan = Plan::new(g.n);
    let scratch = if g.is_pointwise() { 0 } else { ckk * p };
    for_each_image(plan, &mut dx, x_len, scratch, |i, dx_img, col| {
        let dy_img = &dy[i * y_len..][..y_len];
        // A pointwise conv's column matrix is the image itself: write straight into dx.
        let dst = if g.is_pointwise() {
            &mut *dx_img
        } else {
            &mut *col
        };
        matmul(
            (ckk, p, g.k),
            row_major(dst.as_mut_ptr(), p),
            false,
            transposed(w.as_ptr(), ckk),
            row_major(dy_img.as_ptr(), p),
            plan.gemm,
        );
        if !g.is_pointwise() {
            col2im(g, col, dx_img, !plan.images_in_parallel);
        }
    });
    dx
}

/// Weight gradient: `dW (K x CKK) = sum_n dy_n (K x P) @ col(x_n)^T (P x CKK)`, one
/// partial sum per thread group, added in a fixed order so the result is deterministic
/// for a given thread count.
pub(super) fn backward_weight(g: &Geometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (p, ckk) = (g.ho * g.wo, g.c * g.kh * g.kw);
    let (x_len, y_len) = (g.c * g.h * g.w, g.k * p);
    debug_assert_eq!((x.len(), dy.len()), (g.n * x_len, g.n * y_len));
    let threads = rayon::current_num_threads().max(1);
    let groups = g.n.clamp(1, threads);
    let per_group = g.n.div_ceil(groups);
    let gemm_par = match threads / groups {
        0 | 1 => Parallelism::None,
        t => Parallelism::Rayon(t),
    };
    let scratch = if g.is_pointwise() { 0 } else { ckk * p };
    let partials: Vec<Vec<f32>> = (0..groups)
        .into_par_iter()
        .map(|grp| {
            let mut dw = vec![0f32; g.k * ckk];
            let mut col = vec![0f32; scratch];
            let end = ((grp + 1) * per_group).min(g.n);
            for i in grp * per_group..end {
                let x_img = &x[i * x_len..][..x_len];
                let dy_img = &dy[i * y_len..][..y_len];
                let col: &[f32] = if g.is_pointwise() {
                    x_img
                } else {
                    im2col(g, x_img, &mut col, groups < threads);
                    &col
                };
                matmul(
                    (g.k, ckk, p),
                    row_major(dw.as_mut_ptr(), ckk),
                    i > grp * per_group,
                    row_major(dy_img.as_ptr(), p),
                    transposed(col.as_ptr(), p),
                    gemm_par,
                );
            }
            dw
        })
        .collect();
    let mut parts = partials.into_iter();
    let mut dw = parts.next().unwrap_or_else(|| vec![0f32; g.k * ckk]);
    for part in parts {
        for (a, b) in dw.iter_mut().zip(&part) {
            *a += *b;
        }
    }
    dw
}
