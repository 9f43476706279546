//! im2col and col2im for one input channel plane: the `kh*kw` rows of the column matrix
//! that come from that channel, rows ordered `(ky, kx)`, for a band of output rows.
//!
//! The column matrix rows are `ld` floats apart, so the same code fills a per-image tile
//! (`ld` = the tile's width) and one image's column band inside a group's wider matrix.

use super::pairs;
use super::Geometry;
use crate::isa::Isa;

/// A band of output rows `oy0..oy1`; its column matrix has `(oy1 - oy0) * wo` columns.
#[derive(Clone, Copy)]
pub(super) struct Tile {
    pub(super) oy0: usize,
    pub(super) oy1: usize,
}

impl Tile {
    /// All output rows of an image.
    pub(super) fn full(g: &Geometry) -> Self {
        Tile { oy0: 0, oy1: g.ho }
    }

    /// Number of output pixels (column-matrix columns) in the band.
    pub(super) fn cols(&self, g: &Geometry) -> usize {
        (self.oy1 - self.oy0) * g.wo
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

/// Writes the `kh*kw` column rows of one input channel plane (`h*w`) for one tile; row
/// `r` is `rows[r * ld..][..t.cols(g)]`. `isa` (a level the CPU has) copies stride 2's
/// every other pixel.
pub(super) fn im2col_channel(g: &Geometry, t: Tile, plane: &[f32], rows: &mut [f32], ld: usize, isa: Isa) {
    let pt = t.cols(g);
    for ky in 0..g.kh {
        for kx in 0..g.kw {
            let row = &mut rows[(ky * g.kw + kx) * ld..][..pt];
            let (lo, hi) = valid_ox(g, kx);
            for oy in t.oy0..t.oy1 {
                let dst = &mut row[(oy - t.oy0) * g.wo..][..g.wo];
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
                    } else if g.stride == 2 {
                        pairs::evens(isa, &src[ix0..], &mut dst[lo..hi]);
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

/// Adds one tile's `kh*kw` column rows of one channel (row `r` at `rows[r * ld..]`) into
/// its plane; `isa` as in [`im2col_channel`].
pub(super) fn col2im_channel(g: &Geometry, t: Tile, rows: &[f32], ld: usize, plane: &mut [f32], isa: Isa) {
    let pt = t.cols(g);
    for ky in 0..g.kh {
        for kx in 0..g.kw {
            let row = &rows[(ky * g.kw + kx) * ld..][..pt];
            let (lo, hi) = valid_ox(g, kx);
            if hi <= lo {
                continue;
            }
            for oy in t.oy0..t.oy1 {
                let Some(iy) = input_row(g, oy, ky) else {
                    continue;
                };
                let base = (oy - t.oy0) * g.wo;
                let src = &row[base + lo..base + hi];
                let dst = &mut plane[iy * g.w..][..g.w];
                let ix0 = lo * g.stride + kx - g.pad;
                if g.stride == 1 {
                    for (d, s) in dst[ix0..ix0 + (hi - lo)].iter_mut().zip(src) {
                        *d += *s;
                    }
                } else if g.stride == 2 {
                    pairs::add_evens(isa, src, &mut dst[ix0..]);
                } else {
                    for (j, s) in src.iter().enumerate() {
                        dst[ix0 + j * g.stride] += *s;
                    }
                }
            }
        }
    }
}
