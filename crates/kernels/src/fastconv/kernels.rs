//! The per-image path of the fast convolution: the three GEMMs (forward, input gradient,
//! weight gradient) one image and one column tile at a time, parallel over images with
//! rayon. Used for maps wide enough that one image makes a wide GEMM.
//!
//! Reference: Chellapilla et al., "High Performance Convolutional Neural Networks for
//! Document Processing" (2006), the im2col + GEMM lowering used by Caffe and PyTorch's
//! CPU `slow_conv2d`. The column matrix of one image is `(C*kh*kw) x (Ho*Wo)`, rows ordered
//! `(c, ky, kx)`, so that the OIHW weight is already its `K x (C*kh*kw)` left operand.

use gemm::Parallelism;
use rayon::prelude::*;

use super::im2col::{col2im_channel, im2col_channel, Tile};
use super::matmul::{matmul, row_major, transposed, Mat, SharedOut};
use super::Geometry;
use crate::isa::Isa;
use crate::fresh::Unwritten;

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

/// Column tiles small enough to stay in L2 between im2col and the GEMM that reads them
/// (a whole 56x56x64 image's columns are 7 MB), but wide enough to keep the GEMM efficient.
fn tiles(g: &Geometry) -> impl Iterator<Item = Tile> + '_ {
    const TILE_FLOATS: usize = 1 << 17;
    const MIN_TILE_COLS: usize = 256;
    let ckk = g.c * g.kh * g.kw;
    let by_cache = TILE_FLOATS / (ckk * g.wo).max(1);
    let rows = by_cache
        .max(MIN_TILE_COLS.div_ceil(g.wo))
        .clamp(1, g.ho.max(1));
    (0..g.ho).step_by(rows).map(move |oy0| Tile {
        oy0,
        oy1: (oy0 + rows).min(g.ho),
    })
}

/// One tile of an image's column matrix (`x_img` is `C*H*W`); channels in parallel when
/// asked. Returns the filled prefix of `col`.
fn im2col<'a>(
    g: &Geometry,
    t: Tile,
    x_img: &[f32],
    col: &'a mut [f32],
    parallel: bool,
    isa: Isa,
) -> &'a [f32] {
    let rows_len = g.kh * g.kw * t.cols(g);
    let col = &mut col[..g.c * rows_len];
    let plane_len = g.h * g.w;
    if parallel {
        col.par_chunks_mut(rows_len)
            .zip(x_img.par_chunks(plane_len))
            .for_each(|(rows, plane)| im2col_channel(g, t, plane, rows, t.cols(g), isa));
    } else {
        for (rows, plane) in col.chunks_mut(rows_len).zip(x_img.chunks(plane_len)) {
            im2col_channel(g, t, plane, rows, t.cols(g), isa);
        }
    }
    col
}

/// Accumulates one tile's column gradient into the image's input gradient `dx_img`.
fn col2im(g: &Geometry, t: Tile, col: &[f32], dx_img: &mut [f32], parallel: bool, isa: Isa) {
    let rows_len = g.kh * g.kw * t.cols(g);
    let plane_len = g.h * g.w;
    if parallel {
        dx_img
            .par_chunks_mut(plane_len)
            .zip(col.par_chunks(rows_len))
            .for_each(|(plane, rows)| col2im_channel(g, t, rows, t.cols(g), plane, isa));
    } else {
        for (plane, rows) in dx_img.chunks_mut(plane_len).zip(col.chunks(rows_len)) {
            col2im_channel(g, t, rows, t.cols(g), plane, isa);
        }
    }
}

/// Scratch floats for the widest tile's column matrix (none for pointwise convs).
fn scratch_len(g: &Geometry) -> usize {
    if g.is_pointwise() {
        return 0;
    }
    let widest = tiles(g).map(|t| t.cols(g)).max().unwrap_or(0);
    g.c * g.kh * g.kw * widest
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

/// Forward: `y_n (K x P) = W (K x CKK) @ col(x_n) (CKK x P)` for every image, one
/// column tile at a time (the tile's GEMM writes a column band of `y_n`).
pub(super) fn forward(g: &Geometry, x: &[f32], w: &[f32], isa: Isa) -> Vec<f32> {
    let (p, ckk) = (g.ho * g.wo, g.c * g.kh * g.kw);
    let (x_len, y_len) = (g.c * g.h * g.w, g.k * p);
    debug_assert_eq!((x.len(), w.len()), (g.n * x_len, g.k * ckk));
    let plan = Plan::new(g.n);
    if !plan.images_in_parallel {
        return super::split::forward(g, x, w, rayon::current_num_threads(), isa);
    }
    let mut y = Unwritten::new(g.n * y_len);
    let out = SharedOut(y.as_mut_ptr());
    (0..g.n).into_par_iter().for_each_init(|| vec![0f32; scratch_len(g)], |col, i| {
        let x_img = &x[i * x_len..][..x_len];
        // SAFETY: image `i`'s `y_len` outputs are inside `y`, and only this task writes them.
        let y_img = unsafe { out.ptr().add(i * y_len) };
        if g.is_pointwise() {
            let (w, x_img) = (row_major(w.as_ptr(), ckk), row_major(x_img.as_ptr(), p));
            matmul(
                (g.k, p, ckk),
                row_major(y_img, p),
                false,
                w,
                x_img,
                plan.gemm,
            );
            return;
        }
        for t in tiles(g) {
            let col = im2col(g, t, x_img, col, !plan.images_in_parallel, isa);
            let dst = Mat {
                // SAFETY: the tile's first output column is inside image `i`'s block.
                ptr: unsafe { y_img.add(t.oy0 * g.wo) },
                rs: p as isize,
                cs: 1,
            };
            let (w, col) = (
                row_major(w.as_ptr(), ckk),
                row_major(col.as_ptr(), t.cols(g)),
            );
            matmul((g.k, t.cols(g), ckk), dst, false, w, col, plan.gemm);
        }
    });
    // SAFETY: every image's block is written: whole by the pointwise GEMM, else tile by tile
    // (the tiles cover all output rows), each GEMM writing its band without reading it.
    unsafe { y.assume_written() }
}

/// Input gradient: per tile `dcol (CKK x Pt) = W^T (CKK x K) @ dy_n[:, tile]`, then
/// col2im into `dx_n`.
pub(super) fn backward_input(g: &Geometry, w: &[f32], dy: &[f32], isa: Isa) -> Vec<f32> {
    let (p, ckk) = (g.ho * g.wo, g.c * g.kh * g.kw);
    let (x_len, y_len) = (g.c * g.h * g.w, g.k * p);
    debug_assert_eq!((dy.len(), w.len()), (g.n * y_len, g.k * ckk));
    let mut dx = vec![0f32; g.n * x_len];
    let plan = Plan::new(g.n);
    for_each_image(plan, &mut dx, x_len, scratch_len(g), |i, dx_img, col| {
        let dy_img = &dy[i * y_len..][..y_len];
        let wt = || transposed(w.as_ptr(), ckk);
        if g.is_pointwise() {
            // A pointwise conv's column matrix is the image itself: write straight into dx.
            let (dst, dy_img) = (
                row_major(dx_img.as_mut_ptr(), p),
                row_major(dy_img.as_ptr(), p),
            );
            matmul((ckk, p, g.k), dst, false, wt(), dy_img, plan.gemm);
            return;
        }
        for t in tiles(g) {
            let pt = t.cols(g);
            let col = &mut col[..ckk * pt];
            let dy_tile = Mat {
                ptr: dy_img[t.oy0 * g.wo..].as_ptr(),
                rs: p as isize,
                cs: 1,
            };
            matmul(
                (ckk, pt, g.k),
                row_major(col.as_mut_ptr(), pt),
                false,
                wt(),
                dy_tile,
                plan.gemm,
            );
            col2im(g, t, col, dx_img, !plan.images_in_parallel, isa);
        }
    });
    dx
}

/// Weight gradient: `dW (K x CKK) = sum_n sum_tiles dy_n[:, tile] @ col(x_n)[:, tile]^T`,
/// one partial sum per thread group, added in a fixed order so the result is
/// deterministic for a given thread count.
pub(super) fn backward_weight(g: &Geometry, x: &[f32], dy: &[f32], isa: Isa) -> Vec<f32> {
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
    let partials: Vec<Vec<f32>> = (0..groups)
        .into_par_iter()
        .map(|grp| {
            let mut dw = vec![0f32; g.k * ckk];
            let mut col = vec![0f32; scratch_len(g)];
            // The first GEMM of the group overwrites the zeros, the rest accumulate.
            let mut accumulate = false;
            for i in grp * per_group..((grp + 1) * per_group).min(g.n) {
                let x_img = &x[i * x_len..][..x_len];
                let dy_img = &dy[i * y_len..][..y_len];
                if g.is_pointwise() {
                    let (dst, dy_m) = (
                        row_major(dw.as_mut_ptr(), ckk),
                        row_major(dy_img.as_ptr(), p),
                    );
                    matmul(
                        (g.k, ckk, p),
                        dst,
                        accumulate,
                        dy_m,
                        transposed(x_img.as_ptr(), p),
                        gemm_par,
                    );
                    accumulate = true;
                    continue;
                }
                for t in tiles(g) {
                    let pt = t.cols(g);
                    let col = im2col(g, t, x_img, &mut col, groups < threads, isa);
                    let dy_tile = Mat {
                        ptr: dy_img[t.oy0 * g.wo..].as_ptr(),
                        rs: p as isize,
                        cs: 1,
                    };
                    let dst = row_major(dw.as_mut_ptr(), ckk);
                    matmul(
                        (g.k, ckk, pt),
                        dst,
                        accumulate,
                        dy_tile,
                        transposed(col.as_ptr(), pt),
                        gemm_par,
                    );
                    accumulate = true;
                }
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
