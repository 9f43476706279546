//! The Winograd transforms for small maps (IResNet's 28x28, 14x14 and 7x7 stages), vectorized
//! across channels: rows of 7 to 28 pixels are too short to vectorize along well, but every map
//! has 64 to 512 channels. Each image is copied once into a zero-padded channels-last buffer,
//! so that the 16 input elements of a tile are 16 contiguous runs of `C` floats; `V` is stored
//! tile-major (`[element][tile][channel]`) and the GEMMs write `M` the same way
//! (`[element][tile][output channel]`), so that the output transform, the bias and the PReLU
//! also run along channels, into a channels-last output that is then copied back to `K x Ho x
//! Wo`.

use gemm::Parallelism;

use super::super::matmul::{matmul, Mat};
use super::{Epilogue, Item, TILE};
use crate::conv::ConvGeometry as Geometry;

/// Scratch floats [`run`] needs besides `V` and `M` for items of at most `rows` tile rows:
/// the padded input of one image's band and its output in `kb` channels.
pub(super) fn scratch_len(g: &Geometry, rows: usize, tw: usize, kb: usize) -> usize {
    (2 * rows + 2) * (2 * tw + 2) * g.c + 4 * rows * tw * kb
}

/// Input transforms, GEMMs and output transforms of an item (tile rows `ty0..ty1` of each of
/// its images). `v` and `m` hold `16 x t x C` and `16 x t x kb` floats, `t` the item's tiles.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn run(
    g: &Geometry,
    it: &Item,
    tw: usize,
    u: &[f32],
    x: &[f32],
    v: &mut [f32],
    m: &mut [f32],
    scratch: &mut [f32],
    y: *mut f32,
    epilogue: Epilogue,
) {
    let (c, kb) = (g.c, it.k1 - it.k0);
    let th = it.ty1 - it.ty0;
    let per_image = th * tw;
    let t = (it.i1 - it.i0) * per_image;
    let (hp, wp) = (2 * th + 2, 2 * tw + 2);
    let (padded, out) = scratch.split_at_mut(hp * wp * c);
    let x_len = c * g.h * g.w;
    for (j, image) in (it.i0..it.i1).enumerate() {
        pad_channels_last(g, &x[image * x_len..][..x_len], 2 * it.ty0, wp, padded);
        for ty in 0..th {
            for tx in 0..tw {
                let at = |r: usize, s: usize| &padded[((2 * ty + r) * wp + 2 * tx + s) * c..][..c];
                let d: [&[f32]; 16] = std::array::from_fn(|e| at(e / 4, e % 4));
                let col = j * per_image + ty * tw + tx;
                let mut rows = v.chunks_exact_mut(t * c);
                let dst: [&mut [f32]; 16] =
                    std::array::from_fn(|_| &mut rows.next().expect("16 elements")[col * c..][..c]);
                input_tile(d, dst, c);
            }
        }
    }
    for e in 0..TILE {
        let lhs = Mat { ptr: u[e * g.k * c + it.k0..].as_ptr(), rs: 1, cs: g.k as isize };
        // `V_e` read as the `C x t` matrix its tile-major storage is, and `M_e` written `kb x t`.
        let rhs = Mat { ptr: v[e * t * c..].as_ptr(), rs: 1, cs: c as isize };
        let dst = Mat { ptr: m[e * t * kb..].as_mut_ptr(), rs: 1, cs: kb as isize };
        matmul((kb, t, c), dst, false, lhs, rhs, Parallelism::None);
    }
    let y_len = g.k * g.ho * g.wo;
    let bias = epilogue.bias.map(|b| &b[it.k0..it.k1]);
    let slopes = epilogue.slopes.map(|s| &s[it.k0..it.k1]);
    for (j, image) in (it.i0..it.i1).enumerate() {
        // The band's output, `2 th x 2 tw x kb`: the last row and column of an odd map are
        // computed and then left out by the copy below.
        let wy = 2 * tw;
        for ty in 0..th {
            for tx in 0..tw {
                let col = j * per_image + ty * tw + tx;
                let mm: [&[f32]; 16] = std::array::from_fn(|e| &m[(e * t + col) * kb..][..kb]);
                let (top, bottom) = out[(2 * ty * wy + 2 * tx) * kb..].split_at_mut(wy * kb);
                let (y00, rest) = top.split_at_mut(kb);
                let y01 = &mut rest[..kb];
                let (y10, rest) = bottom.split_at_mut(kb);
                let y11 = &mut rest[..kb];
                output_tile(mm, [y00, y01, y10, y11], bias, slopes, kb);
            }
        }
        // SAFETY: channels `k0..k1` of image `image` are this item's block of `y`.
        let y_img = unsafe { y.add(image * y_len + it.k0 * g.ho * g.wo) };
        unpack_channels_last(g, out, 2 * it.ty0..(2 * it.ty1).min(g.ho), wy, kb, y_img);
    }
}

/// Copies the rows of `x_img` (`C x H x W`) that padded rows `top..` cover into `padded`
/// (rows of `wp` pixels of `C` channels), zeros around them.
#[inline(always)]
fn pad_channels_last(g: &Geometry, x_img: &[f32], top: usize, wp: usize, padded: &mut [f32]) {
    let c = g.c;
    padded.fill(0.0);
    let plane = g.h * g.w;
    let rows = padded.len() / (wp * c);
    // Padded row `r` of the band is input row `top + r - pad`.
    let first = top.saturating_sub(g.pad);
    let last = (top + rows).saturating_sub(g.pad).min(g.h);
    for iy in first..last {
        let r = iy + g.pad - top;
        for ix in 0..g.w {
            let dst = &mut padded[(r * wp + ix + g.pad) * c..][..c];
            let src = &x_img[iy * g.w + ix..];
            for (ci, d) in dst.iter_mut().enumerate() {
                *d = src[ci * plane];
            }
        }
    }
}

/// Copies output rows `rows` from `out` (rows of `wy` pixels of `kb` channels, from the
/// first of `rows`) into `kb` planes at `y` (`kb x Ho x Wo`).
#[inline(always)]
fn unpack_channels_last(g: &Geometry, out: &[f32], rows: std::ops::Range<usize>, wy: usize, kb: usize, y: *mut f32) {
    let plane = g.ho * g.wo;
    for oy in rows.clone() {
        for ox in 0..g.wo {
            let src = &out[((oy - rows.start) * wy + ox) * kb..][..kb];
            for (kk, v) in src.iter().enumerate() {
                // SAFETY: `kk < kb` and `(oy, ox)` is inside the plane: inside the caller's block.
                unsafe { *y.add(kk * plane + oy * g.wo + ox) = *v };
            }
        }
    }
}

/// Channels a transform step handles at once: one AVX-512 register per tile element.
const LANES: usize = 16;

/// `V = B^T d B` of one tile along `c` channels, with `B^T = [[1, 0, -1, 0], [0, 1, 1, 0],
/// [0, -1, 1, 0], [0, 1, 0, -1]]`: `d[4 r + s]` is padded pixel `(r, s)` of the tile, `v[4 i
/// + j]` element `(i, j)` of the transform.
#[inline(always)]
fn input_tile(d: [&[f32]; 16], mut v: [&mut [f32]; 16], c: usize) {
    for c0 in (0..c).step_by(LANES) {
        let n = LANES.min(c - c0);
        let mut p = [[0f32; LANES]; 16];
        for (p, d) in p.iter_mut().zip(&d) {
            load(p, &d[c0..], n);
        }
        let out = input_lanes(&p);
        for (v, o) in v.iter_mut().zip(&out) {
            store(&mut v[c0..], o, n);
        }
    }
}

/// [`input_tile`] on `LANES` channels held in registers.
#[inline(always)]
fn input_lanes(p: &[[f32; LANES]; 16]) -> [[f32; LANES]; 16] {
    let lanes = |f: &dyn Fn(usize) -> f32| -> [f32; LANES] { std::array::from_fn(f) };
    // Rows: b(i, s) = sum_r B^T(i, r) p(r, s).
    let mut b = [[0f32; LANES]; 16];
    for s in 0..4 {
        let (p0, p1, p2, p3) = (&p[s], &p[4 + s], &p[8 + s], &p[12 + s]);
        b[s] = lanes(&|l| p0[l] - p2[l]);
        b[4 + s] = lanes(&|l| p1[l] + p2[l]);
        b[8 + s] = lanes(&|l| p2[l] - p1[l]);
        b[12 + s] = lanes(&|l| p1[l] - p3[l]);
    }
    // Columns: v(i, j) = sum_s b(i, s) B(s, j).
    let mut v = [[0f32; LANES]; 16];
    for i in 0..4 {
        let (b0, b1, b2, b3) = (&b[4 * i], &b[4 * i + 1], &b[4 * i + 2], &b[4 * i + 3]);
        v[4 * i] = lanes(&|l| b0[l] - b2[l]);
        v[4 * i + 1] = lanes(&|l| b1[l] + b2[l]);
        v[4 * i + 2] = lanes(&|l| b2[l] - b1[l]);
        v[4 * i + 3] = lanes(&|l| b1[l] - b3[l]);
    }
    v
}

/// `A^T M A` of one tile along `kb` output channels, with `A^T = [[1, 1, 1, 0], [0, 1, -1,
/// -1]]`, then `+ bias` and PReLU: `y` are the output pixels (0, 0), (0, 1), (1, 0), (1, 1).
#[inline(always)]
fn output_tile(
    m: [&[f32]; 16],
    mut y: [&mut [f32]; 4],
    bias: Option<&[f32]>,
    slopes: Option<&[f32]>,
    kb: usize,
) {
    for k0 in (0..kb).step_by(LANES) {
        let n = LANES.min(kb - k0);
        let mut p = [[0f32; LANES]; 16];
        for (p, m) in p.iter_mut().zip(&m) {
            load(p, &m[k0..], n);
        }
        let mut out = output_lanes(&p);
        if let Some(bias) = bias {
            let mut b = [0f32; LANES];
            load(&mut b, &bias[k0..], n);
            for o in out.iter_mut() {
                *o = std::array::from_fn(|l| o[l] + b[l]);
            }
        }
        if let Some(slopes) = slopes {
            let mut a = [0f32; LANES];
            load(&mut a, &slopes[k0..], n);
            for o in out.iter_mut() {
                *o = std::array::from_fn(|l| if o[l] > 0.0 { o[l] } else { a[l] * o[l] });
            }
        }
        for (y, o) in y.iter_mut().zip(&out) {
            store(&mut y[k0..], o, n);
        }
    }
}

/// [`output_tile`]'s `A^T M A` on `LANES` channels held in registers.
#[inline(always)]
fn output_lanes(p: &[[f32; LANES]; 16]) -> [[f32; LANES]; 4] {
    let lanes = |f: &dyn Fn(usize) -> f32| -> [f32; LANES] { std::array::from_fn(f) };
    // Rows of A^T M (r0: m_0j + m_1j + m_2j, r1: m_1j - m_2j - m_3j), then the columns.
    let r0: [[f32; LANES]; 4] = std::array::from_fn(|j| lanes(&|l| p[j][l] + p[4 + j][l] + p[8 + j][l]));
    let r1: [[f32; LANES]; 4] = std::array::from_fn(|j| lanes(&|l| p[4 + j][l] - p[8 + j][l] - p[12 + j][l]));
    [
        lanes(&|l| r0[0][l] + r0[1][l] + r0[2][l]),
        lanes(&|l| r0[1][l] - r0[2][l] - r0[3][l]),
        lanes(&|l| r1[0][l] + r1[1][l] + r1[2][l]),
        lanes(&|l| r1[1][l] - r1[2][l] - r1[3][l]),
    ]
}

/// The first `n` floats of `src` into `dst` (a whole register's worth when `n == LANES`).
#[inline(always)]
fn load(dst: &mut [f32; LANES], src: &[f32], n: usize) {
    match n {
        LANES => *dst = src[..LANES].try_into().expect("LANES floats"),
        _ => dst[..n].copy_from_slice(&src[..n]),
    }
}

/// `src`'s first `n` floats into `dst`.
#[inline(always)]
fn store(dst: &mut [f32], src: &[f32; LANES], n: usize) {
    match n {
        LANES => dst[..LANES].copy_from_slice(src),
        _ => dst[..n].copy_from_slice(&src[..n]),
    }
}
