//! The small-map path: several images share one GEMM.
//!
//! With 7x7 output maps a per-image GEMM is only 49 columns wide, and the weight gradient
//! re-reads and re-writes all of `dW` (up to 512 x 4608 floats) for each image. Here the
//! batch is cut into groups of consecutive images whose column matrices sit side by side,
//! `col_grp (CKK x G*P)` with image `j`'s band at columns `j*P..(j+1)*P`, so one GEMM per
//! group does the work: `Y_grp = W @ col_grp` (scattered back to NCHW), `dcol_grp = W^T @
//! dY_grp` (`dY_grp` gathered from NCHW, then col2im per image) and `dW += dY_grp @
//! col_grp^T`. Groups run either on separate threads with single-threaded GEMMs, or, when
//! there are fewer groups than threads, one after another with every GEMM using all
//! threads ([`Groups::new`] picks).

use std::ops::Range;

use gemm::Parallelism;
use rayon::prelude::*;

use super::im2col::{col2im_channel, im2col_channel, Tile};
use super::matmul::{matmul, row_major, transposed};
use super::Geometry;
use crate::isa::Isa;

/// Only maps up to this many output pixels are grouped. Measured on a 2-core AVX2 EPYC at
/// batch 32: 7x7 maps (stage 4 of an IResNet) run their backward 20-25% faster grouped,
/// while 14x14 maps (196 pixels, stage 3) gain nothing over per-image GEMMs.
const MAX_GROUPED_PIXELS: usize = 128;
/// A group aims at this many GEMM columns.
const TARGET_COLS: usize = 1024;
/// Upper bound on one group's largest scratch matrix, in floats (16 MB).
const MAX_SCRATCH_FLOATS: usize = 4 << 20;

/// How a batch is cut into groups and how the groups are run.
pub(super) struct Groups {
    /// Image ranges, consecutive, sizes differing by at most one.
    ranges: Vec<Range<usize>>,
    /// Contiguous runs of groups, one per thread (a single lane runs groups in order).
    lanes: usize,
    /// Parallelism inside each GEMM.
    gemm: Parallelism,
    /// Columns of the widest group's matrices.
    max_cols: usize,
}

impl Groups {
    /// The grouping for `g`, or `None` when per-image GEMMs are already wide enough (or
    /// there is only one image to a group).
    pub(super) fn new(g: &Geometry) -> Option<Self> {
        let p = g.ho * g.wo;
        if p == 0 || p > MAX_GROUPED_PIXELS || g.n < 2 {
            return None;
        }
        let rows = (g.c * g.kh * g.kw).max(g.k);
        let by_budget = MAX_SCRATCH_FLOATS / (rows * p).max(1);
        let size = TARGET_COLS.div_ceil(p).min(by_budget).min(g.n);
        if size < 2 {
            return None;
        }
        let threads = rayon::current_num_threads().max(1);
        let mut count = g.n.div_ceil(size);
        // Separate groups per thread measured as fast (7x7) or faster (14x14, 20%) than
        // multi-threaded GEMMs on one group at a time: no fork/join inside the GEMM.
        let parallel = threads > 1 && count >= threads;
        if parallel {
            // Equal work per thread: a whole number of groups each.
            count = count.next_multiple_of(threads).min(g.n);
        }
        let ranges: Vec<_> = (0..count)
            .map(|j| j * g.n / count..(j + 1) * g.n / count)
            .collect();
        let max_cols = ranges.iter().map(|r| r.len()).max().unwrap_or(0) * p;
        let (lanes, gemm) = match parallel {
            true => (threads, Parallelism::None),
            false if threads > 1 => (1, Parallelism::Rayon(threads)),
            false => (1, Parallelism::None),
        };
        Some(Groups {
            ranges,
            lanes,
            gemm,
            max_cols,
        })
    }

    /// Whether helpers (im2col, copies) should spread one group over the threads.
    fn inner_parallel(&self) -> bool {
        self.lanes == 1 && !matches!(self.gemm, Parallelism::None)
    }

    /// `items` (one per group, in order) dealt into contiguous lanes.
    fn deal_into_lanes<T>(&self, items: Vec<T>) -> Vec<Vec<T>> {
        let count = items.len();
        let mut items = items.into_iter();
        (0..self.lanes)
            .map(|t| {
                let len = (t + 1) * count / self.lanes - t * count / self.lanes;
                items.by_ref().take(len).collect()
            })
            .collect()
    }

    /// Each group's image range with its part of `out` (`per_image` floats an image),
    /// dealt into lanes.
    fn split<'a>(
        &self,
        out: &'a mut [f32],
        per_image: usize,
    ) -> Vec<Vec<(Range<usize>, &'a mut [f32])>> {
        let mut rest = out;
        let parts = self
            .ranges
            .iter()
            .map(|r| {
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(r.len() * per_image);
                rest = tail;
                (r.clone(), head)
            })
            .collect();
        self.deal_into_lanes(parts)
    }
}

/// Sizes used by every grouped kernel.
struct Dims {
    p: usize,
    ckk: usize,
    x_len: usize,
    y_len: usize,
}

impl Dims {
    fn new(g: &Geometry) -> Self {
        let p = g.ho * g.wo;
        Dims {
            p,
            ckk: g.c * g.kh * g.kw,
            x_len: g.c * g.h * g.w,
            y_len: g.k * p,
        }
    }
}

/// Fills `col` (CKK x `images * p`) with the column bands of the images in `x_grp`.
fn im2col_group(g: &Geometry, x_grp: &[f32], images: usize, col: &mut [f32], par: bool, isa: Isa) {
    let d = Dims::new(g);
    let (kk, ld, plane) = (g.kh * g.kw, images * d.p, g.h * g.w);
    let full = Tile::full(g);
    let channel = |(c, rows): (usize, &mut [f32])| {
        for j in 0..images {
            let src = &x_grp[j * d.x_len + c * plane..][..plane];
            im2col_channel(g, full, src, &mut rows[j * d.p..], ld, isa);
        }
    };
    let col = &mut col[..d.ckk * ld];
    match par {
        true => col.par_chunks_mut(kk * ld).enumerate().for_each(channel),
        false => col.chunks_mut(kk * ld).enumerate().for_each(channel),
    }
}

/// Adds the column bands of `dcol` (CKK x `images * p`) into the images of `dx_grp`.
fn col2im_group(g: &Geometry, dcol: &[f32], images: usize, dx_grp: &mut [f32], par: bool, isa: Isa) {
    let d = Dims::new(g);
    let (kk, ld, plane) = (g.kh * g.kw, images * d.p, g.h * g.w);
    let full = Tile::full(g);
    let channel = |(i, dst): (usize, &mut [f32])| {
        let (j, c) = (i / g.c, i % g.c);
        col2im_channel(g, full, &dcol[c * kk * ld + j * d.p..], ld, dst, isa);
    };
    let dx_grp = &mut dx_grp[..images * d.x_len];
    match par {
        true => dx_grp.par_chunks_mut(plane).enumerate().for_each(channel),
        false => dx_grp.chunks_mut(plane).enumerate().for_each(channel),
    }
}

/// Copies NCHW maps (`images` of K x P) into or out of the K x `images * p` matrix `m`.
fn gather_bands(g: &Geometry, nchw: &[f32], images: usize, m: &mut [f32], par: bool) {
    let p = g.ho * g.wo;
    let ld = images * p;
    let row = |(k, dst): (usize, &mut [f32])| {
        for j in 0..images {
            dst[j * p..][..p].copy_from_slice(&nchw[(j * g.k + k) * p..][..p]);
        }
    };
    let m = &mut m[..g.k * ld];
    match par {
        true => m.par_chunks_mut(ld).enumerate().for_each(row),
        false => m.chunks_mut(ld).enumerate().for_each(row),
    }
}

/// The inverse of [`gather_bands`]: scatters the K x `images * p` matrix `m` into NCHW.
fn scatter_bands(g: &Geometry, m: &[f32], images: usize, nchw: &mut [f32], par: bool) {
    let p = g.ho * g.wo;
    let ld = images * p;
    let map = |(i, dst): (usize, &mut [f32])| {
        let (j, k) = (i / g.k, i % g.k);
        dst.copy_from_slice(&m[k * ld + j * p..][..p]);
    };
    let nchw = &mut nchw[..images * g.k * p];
    match par {
        true => nchw
            .par_chunks_mut(p)
            .with_min_len(64)
            .enumerate()
            .for_each(map),
        false => nchw.chunks_mut(p).enumerate().for_each(map),
    }
}

/// Forward: per group `Y_grp (K x G*P) = W (K x CKK) @ col_grp (CKK x G*P)`.
pub(super) fn forward(g: &Geometry, groups: &Groups, x: &[f32], w: &[f32], isa: Isa) -> Vec<f32> {
    let d = Dims::new(g);
    debug_assert_eq!((x.len(), w.len()), (g.n * d.x_len, g.k * d.ckk));
    let mut y = vec![0f32; g.n * d.y_len];
    let par = groups.inner_parallel();
    let lanes = groups.split(&mut y, d.y_len);
    lanes.into_par_iter().for_each(|lane| {
        let mut col = vec![0f32; d.ckk * groups.max_cols];
        let mut y_grp = vec![0f32; g.k * groups.max_cols];
        for (r, y_out) in lane {
            let cols = r.len() * d.p;
            im2col_group(
                g,
                &x[r.start * d.x_len..r.end * d.x_len],
                r.len(),
                &mut col,
                par,
                isa,
            );
            matmul(
                (g.k, cols, d.ckk),
                row_major(y_grp.as_mut_ptr(), cols),
                false,
                row_major(w.as_ptr(), d.ckk),
                row_major(col.as_ptr(), cols),
                groups.gemm,
            );
            scatter_bands(g, &y_grp, r.len(), y_out, par);
        }
    });
    y
}

/// Input gradient: per group `dcol_grp (CKK x G*P) = W^T @ dY_grp (K x G*P)`, then col2im
/// of each image's band.
pub(super) fn backward_input(g: &Geometry, groups: &Groups, w: &[f32], dy: &[f32], isa: Isa) -> Vec<f32> {
    let d = Dims::new(g);
    debug_assert_eq!((dy.len(), w.len()), (g.n * d.y_len, g.k * d.ckk));
    let mut dx = vec![0f32; g.n * d.x_len];
    let par = groups.inner_parallel();
    let lanes = groups.split(&mut dx, d.x_len);
    lanes.into_par_iter().for_each(|lane| {
        let mut dcol = vec![0f32; d.ckk * groups.max_cols];
        let mut dy_grp = vec![0f32; g.k * groups.max_cols];
        for (r, dx_out) in lane {
            let cols = r.len() * d.p;
            let dy_src = &dy[r.start * d.y_len..r.end * d.y_len];
            gather_bands(g, dy_src, r.len(), &mut dy_grp, par);
            matmul(
                (d.ckk, cols, g.k),
                row_major(dcol.as_mut_ptr(), cols),
                false,
                transposed(w.as_ptr(), d.ckk),
                row_major(dy_grp.as_ptr(), cols),
                groups.gemm,
            );
            col2im_group(g, &dcol, r.len(), dx_out, par, isa);
        }
    });
    dx
}

/// Weight gradient: `dW (K x CKK) = sum_groups dY_grp (K x G*P) @ col_grp^T`, one partial
/// sum per lane, added in lane order so the result is deterministic for a given thread
/// count.
pub(super) fn backward_weight(g: &Geometry, groups: &Groups, x: &[f32], dy: &[f32], isa: Isa) -> Vec<f32> {
    let d = Dims::new(g);
    debug_assert_eq!((x.len(), dy.len()), (g.n * d.x_len, g.n * d.y_len));
    let par = groups.inner_parallel();
    let lanes = groups.deal_into_lanes(groups.ranges.clone());
    let partials: Vec<Vec<f32>> = lanes
        .into_par_iter()
        .map(|lane| {
            let mut dw = vec![0f32; g.k * d.ckk];
            let mut col = vec![0f32; d.ckk * groups.max_cols];
            let mut dy_grp = vec![0f32; g.k * groups.max_cols];
            for (i, r) in lane.into_iter().enumerate() {
                let cols = r.len() * d.p;
                im2col_group(
                    g,
                    &x[r.start * d.x_len..r.end * d.x_len],
                    r.len(),
                    &mut col,
                    par,
                    isa,
                );
                let dy_src = &dy[r.start * d.y_len..r.end * d.y_len];
                gather_bands(g, dy_src, r.len(), &mut dy_grp, par);
                // The lane's first GEMM overwrites the zeros, the rest accumulate.
                matmul(
                    (g.k, d.ckk, cols),
                    row_major(dw.as_mut_ptr(), d.ckk),
                    i > 0,
                    row_major(dy_grp.as_ptr(), cols),
                    transposed(col.as_ptr(), cols),
                    groups.gemm,
                );
            }
            dw
        })
        .collect();
    let mut parts = partials.into_iter();
    let mut dw = parts.next().unwrap_or_else(|| vec![0f32; g.k * d.ckk]);
    for part in parts {
        for (a, b) in dw.iter_mut().zip(&part) {
            *a += *b;
        }
    }
    dw
}
