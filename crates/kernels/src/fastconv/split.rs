//! The few-images forward: with fewer images than threads (batch 1 in `embed` and `verify`),
//! each image's convolution is cut into work items that the threads share, every item a
//! single-threaded GEMM.
//!
//! An item is a band of output rows (its own im2col tile) times a band of output channels
//! (rows of `W`). Large maps are cut by output rows only, into a multiple of the thread
//! count; maps too small for that (14x14 and 7x7 in an IResNet) are also cut by channels,
//! and each channel band repeats the tile's im2col, which costs `1/K` of the GEMM's work.
//! gemm's own threads, given one image at a time, do not scale past one thread on these
//! shapes (r50 at batch 1: 152 ms on one thread, 158 ms on two, 2-core EPYC).

use gemm::Parallelism;
use rayon::prelude::*;

use super::im2col::{im2col_channel, Tile};
use super::matmul::{matmul, row_major, Mat, SharedOut};
use super::Geometry;
use crate::isa::Isa;
use crate::fresh::Unwritten;

/// Column tiles of at most this many floats stay in L2 between im2col and the GEMM.
const TILE_FLOATS: usize = 1 << 17;
/// Below this many columns a tile's GEMM loses efficiency.
const MIN_TILE_COLS: usize = 256;

/// One work item: output rows `tile` and output channels `channels` of one image.
#[derive(Clone, Copy)]
struct Item {
    tile: Tile,
    k0: usize,
    k1: usize,
}

/// The work items of one image for `threads` threads, about equal in work.
fn items(g: &Geometry, threads: usize) -> Vec<Item> {
    let ckk = g.c * g.kh * g.kw;
    let rows_by_cache =
        (TILE_FLOATS / (ckk * g.wo).max(1)).max(MIN_TILE_COLS.div_ceil(g.wo.max(1)));
    let by_cache = g.ho.div_ceil(rows_by_cache.max(1)).max(1);
    let (tiles, bands) = if by_cache >= threads {
        (by_cache.next_multiple_of(threads).min(g.ho), 1)
    } else {
        (by_cache, threads.div_ceil(by_cache).min(g.k.max(1)))
    };
    let mut out = Vec::with_capacity(tiles * bands);
    for t in 0..tiles {
        let tile = Tile {
            oy0: t * g.ho / tiles,
            oy1: (t + 1) * g.ho / tiles,
        };
        for b in 0..bands {
            out.push(Item {
                tile,
                k0: b * g.k / bands,
                k1: (b + 1) * g.k / bands,
            });
        }
    }
    out
}

/// Forward `y_n = W @ col(x_n)` for each image, the work of each image shared by `threads`.
pub(super) fn forward(g: &Geometry, x: &[f32], w: &[f32], threads: usize, isa: Isa) -> Vec<f32> {
    let (p, ckk) = (g.ho * g.wo, g.c * g.kh * g.kw);
    let (x_len, y_len) = (g.c * g.h * g.w, g.k * p);
    debug_assert_eq!((x.len(), w.len()), (g.n * x_len, g.k * ckk));
    let mut y = Unwritten::new(g.n * y_len);
    let y_ptr = y.as_mut_ptr();
    let items = items(g, threads);
    let widest = items.iter().map(|it| it.tile.cols(g)).max().unwrap_or(0);
    let scratch = if g.is_pointwise() { 0 } else { ckk * widest };
    for (i, x_img) in x.chunks_exact(x_len).enumerate() {
        // SAFETY: image `i`'s `y_len` outputs are inside `y`.
        let out = SharedOut(unsafe { y_ptr.add(i * y_len) });
        items.par_iter().for_each_init(
            || vec![0f32; scratch],
            |col, it| {
                let pt = it.tile.cols(g);
                let first_col = it.tile.oy0 * g.wo;
                let rhs = if g.is_pointwise() {
                    Mat {
                        ptr: x_img[first_col..].as_ptr(),
                        rs: p as isize,
                        cs: 1,
                    }
                } else {
                    let rows_len = g.kh * g.kw * pt;
                    let col = &mut col[..g.c * rows_len];
                    for (rows, plane) in col.chunks_mut(rows_len).zip(x_img.chunks(g.h * g.w)) {
                        im2col_channel(g, it.tile, plane, rows, pt, isa);
                    }
                    row_major(col.as_ptr(), pt)
                };
                // SAFETY: the block (k0..k1) x (first_col..first_col + pt) is inside `y_img`
                // and no other item writes it.
                let dst = Mat {
                    ptr: unsafe { out.ptr().add(it.k0 * p + first_col) },
                    rs: p as isize,
                    cs: 1,
                };
                let lhs = row_major(w[it.k0 * ckk..].as_ptr(), ckk);
                matmul(
                    (it.k1 - it.k0, pt, ckk),
                    dst,
                    false,
                    lhs,
                    rhs,
                    Parallelism::None,
                );
            },
        );
    }
    // SAFETY: the items' blocks (output channels x tile columns) cover each image's output,
    // and each GEMM writes its whole block (`accumulate` false: it reads nothing there).
    unsafe { y.assume_written() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(c: usize, k: usize, side: usize, ks: usize, stride: usize) -> Geometry {
        Geometry::new("test", &[1, c, side, side], &[k, c, ks, ks], stride, ks / 2).unwrap()
    }

    /// Every output element is covered by exactly one item, and the work is balanced.
    #[test]
    fn items_cover_the_output_once_and_balance() {
        for (c, k, side, ks, stride) in [
            (64, 64, 56, 3, 1),
            (128, 128, 28, 3, 1),
            (256, 256, 14, 3, 1),
            (512, 512, 7, 3, 1),
            (3, 64, 112, 3, 1),
            (64, 128, 56, 1, 2),
        ] {
            let g = geometry(c, k, side, ks, stride);
            for threads in [2, 3, 4, 16] {
                let items = items(&g, threads);
                let mut hits = vec![0u8; g.k * g.ho];
                for it in &items {
                    for kk in it.k0..it.k1 {
                        for oy in it.tile.oy0..it.tile.oy1 {
                            hits[kk * g.ho + oy] += 1;
                        }
                    }
                }
                assert!(
                    hits.iter().all(|&h| h == 1),
                    "{c}x{side} k{k} threads {threads}"
                );
                assert!(
                    items.len() >= threads.min(g.ho * g.k),
                    "{c}x{side}: {} items",
                    items.len()
                );
                let work = |it: &Item| (it.k1 - it.k0) * it.tile.cols(&g);
                let (lo, hi) = (
                    items.iter().map(work).min().unwrap(),
                    items.iter().map(work).max().unwrap(),
                );
                assert!(
                    hi * 10 <= lo * 15 || items.len() >= 4 * threads,
                    "{c}x{side} threads {threads}: {lo}..{hi}"
                );
            }
        }
    }
}
