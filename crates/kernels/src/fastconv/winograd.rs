//! Winograd F(2x2, 3x3) forward for 3x3 stride-1 convolutions: each 2x2 block of output
//! pixels comes from a 4x4 input patch with 16 multiplications per (input, output) channel
//! pair instead of 36, so the GEMMs do 2.25x less work than im2col's.
//!
//! Reference: Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016.
//! With `d` a 4x4 input patch and `g` a 3x3 kernel, the 2x2 output is `A^T [(G g G^T) .*
//! (B^T d B)] A`. The kernel transform `U = G g G^T` is done once per kernel
//! ([`transform_kernels`]: once for inference, once per call in training). Per work item, the
//! input transforms `V = B^T d B` of a band of tile rows are 16 matrices `C x T` (one per
//! element of the 4x4 tile), the 16 products `M = U @ V` are single-threaded GEMMs, and the
//! output transform scatters `A^T M A` into the image. The transforms run along rows on maps
//! wider than [`CHANNELS_LAST_WIDTH`], along channels on smaller ones ([`channels_last`]).
//! Work items (images, tile rows, output channels) are cut as in [`super::split`], so batch
//! 1 uses every thread too; on small maps an item takes several whole images, so that each
//! GEMM is wide enough to pay for reading its `U` (16 MB at 512 channels).
//!
//! F(2x2, 3x3) in f32 keeps the error at the level of the direct sum (the transforms only
//! add, subtract and halve); F(4x4, 3x3) would save more but loses about two digits.

mod channels_last;

use gemm::Parallelism;
use rayon::prelude::*;

use super::matmul::{matmul, row_major, Mat, SharedOut};
use super::pairs;
use super::Geometry;
use crate::fresh::Unwritten;
use crate::isa::Isa;

/// Elements of a 4x4 transformed tile: there are 16 GEMMs.
const TILE: usize = 16;
/// A band's transformed input and products aim to fit in L2: floats of `V` plus `M`.
const BAND_FLOATS: usize = 1 << 18;

/// Items on maps with fewer tiles than this take several images, up to about this many tiles:
/// a GEMM `K x C @ C x t` reads `U` once for `2 t` flops per element.
const GROUP_TILES: usize = 64;

/// Maps at most this wide run the transforms along channels ([`channels_last`]).
const CHANNELS_LAST_WIDTH: usize = 28;

/// Whether `g`'s transforms run along channels rather than along rows.
fn is_channels_last(g: &Geometry) -> bool {
    g.wo <= CHANNELS_LAST_WIDTH
}

/// Below this many input channels (an RGB stem) the 16 GEMMs are too thin to gain anything.
pub(crate) const MIN_CHANNELS: usize = 8;

/// Whether `g` can run on this kernel: 3x3, stride 1, padding at most 2.
pub(crate) fn supports(g: &Geometry) -> bool {
    g.kh == 3 && g.kw == 3 && g.stride == 1 && g.pad <= 2 && g.ho > 0 && g.wo > 0
}

/// `U = G g G^T` of every `K x C x 3 x 3` kernel, stored as 16 column-major `K x C` matrices
/// (element `(i, j)` of the 4x4 tile is matrix `4 i + j`; its column `c` holds the `K` output
/// channels): the layout the GEMMs read without repacking it.
pub(crate) fn transform_kernels(w: &[f32], k: usize, c: usize) -> Vec<f32> {
    debug_assert_eq!(w.len(), k * c * 9);
    transform(k, c, |ko, ci| &w[(ko * c + ci) * 9..][..9], false)
}

/// [`transform_kernels`] of the kernels of the input gradient's convolution: `w` is `K x C x 3
/// x 3` and the result that of the `C x K` kernels `w[k][c]` turned 180 degrees.
pub(crate) fn transform_kernels_transposed(w: &[f32], k: usize, c: usize) -> Vec<f32> {
    debug_assert_eq!(w.len(), k * c * 9);
    transform(c, k, |co, ki| &w[(ki * c + co) * 9..][..9], true)
}

/// `U` of `k x c` kernels: `kernel(out, in)` returns the 9 taps of one, row-major, or in
/// reverse order (the kernel turned 180 degrees) when `turned`.
fn transform<'a>(k: usize, c: usize, kernel: impl Fn(usize, usize) -> &'a [f32] + Sync, turned: bool) -> Vec<f32> {
    let mut u = Unwritten::new(TILE * k * c);
    let out = SharedOut(u.as_mut_ptr());
    // Blocks of output channels: each writes runs of `BLOCK` floats, and reads its kernels
    // in order.
    const BLOCK: usize = 16;
    (0..k.div_ceil(BLOCK)).into_par_iter().for_each(|b| {
        let (k0, k1) = (b * BLOCK, ((b + 1) * BLOCK).min(k));
        let n = k1 - k0;
        for ci in 0..c {
            // Tap `t` of the block's kernels for input channel `ci`, one lane per kernel.
            let mut g = [[0f32; BLOCK]; 9];
            for (lane, ki) in (k0..k1).enumerate() {
                for (t, tap) in kernel(ki, ci).iter().enumerate() {
                    g[if turned { 8 - t } else { t }][lane] = *tap;
                }
            }
            let tile = kernel_tiles(&g);
            for (e, run) in tile.iter().enumerate() {
                // SAFETY: row `(e, ci)` of `u` is `k` long, and only this block writes its
                // columns `k0..k1`.
                let dst = unsafe { out.ptr().add((e * c + ci) * k + k0) };
                match n {
                    // A whole block as one array store: a slice copy would call memmove.
                    BLOCK => unsafe { dst.cast::<[f32; BLOCK]>().write_unaligned(*run) },
                    _ => unsafe { std::slice::from_raw_parts_mut(dst, n) }.copy_from_slice(&run[..n]),
                }
            }
        }
    });
    // SAFETY: the blocks cover every output channel, each writing its columns of all 16 x C
    // rows.
    unsafe { u.assume_written() }
}

/// `G g G^T` of 3x3 kernels, one per lane (`g[3 r + s]` holds tap `(r, s)` of each),
/// with `G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]`.
#[inline(always)]
fn kernel_tiles<const L: usize>(g: &[[f32; L]; 9]) -> [[f32; L]; 16] {
    let gg = |r: [&[f32; L]; 3]| -> [[f32; L]; 4] {
        [
            *r[0],
            std::array::from_fn(|l| 0.5 * (r[0][l] + r[1][l] + r[2][l])),
            std::array::from_fn(|l| 0.5 * (r[0][l] - r[1][l] + r[2][l])),
            *r[2],
        ]
    };
    // Columns first (G g^T per row of g), then rows.
    let rows: [[[f32; L]; 4]; 3] = std::array::from_fn(|r| gg([&g[3 * r], &g[3 * r + 1], &g[3 * r + 2]]));
    let mut u = [[0f32; L]; 16];
    for j in 0..4 {
        let col = gg([&rows[0][j], &rows[1][j], &rows[2][j]]);
        for i in 0..4 {
            u[4 * i + j] = col[i];
        }
    }
    u
}

/// One work item: tile rows `ty0..ty1` and output channels `k0..k1` of images `i0..i1` (all
/// tile rows when there are several images).
#[derive(Clone, Copy, Debug)]
struct Item {
    i0: usize,
    i1: usize,
    ty0: usize,
    ty1: usize,
    k0: usize,
    k1: usize,
}

/// Tile rows and columns of the output (2x2 tiles, the last ones may stick out).
fn tiles(g: &Geometry) -> (usize, usize) {
    (g.ho.div_ceil(2), g.wo.div_ceil(2))
}

/// The work items for `threads` threads: bands of equal numbers of tile rows, about as many
/// as fit the L2 budget, or groups of images on maps of fewer than [`GROUP_TILES`] tiles, and,
/// when the items would not divide evenly among the threads (batch 1 on small maps),
/// output-channel bands too.
fn items(g: &Geometry, threads: usize) -> Vec<Item> {
    let (th, tw) = tiles(g);
    let band_tiles = (BAND_FLOATS / (TILE * (g.c + g.k))).max(1);
    let by_cache = th.div_ceil((band_tiles / tw).max(1)).max(1);
    // The largest divisor of the tile rows not above the budget's band count: equal bands.
    let bands = (1..=by_cache).rev().find(|b| th % b == 0).unwrap_or(1);
    let per_group = match th * tw {
        t if t < GROUP_TILES => GROUP_TILES.div_ceil(t).min(g.n).max(1),
        _ => 1,
    };
    let groups = g.n.div_ceil(per_group);
    let (bands, total) = match per_group {
        1 => (bands, g.n * bands),
        _ => (1, groups),
    };
    let k_bands = if total >= 4 * threads || total % threads == 0 {
        1
    } else {
        (threads / gcd(total, threads)).clamp(1, g.k.max(1))
    };
    let mut out = Vec::with_capacity(total * k_bands);
    for group in 0..groups {
        let (i0, i1) = (group * g.n / groups, (group + 1) * g.n / groups);
        for b in 0..bands {
            for kb in 0..k_bands {
                out.push(Item {
                    i0,
                    i1,
                    ty0: b * th / bands,
                    ty1: (b + 1) * th / bands,
                    k0: kb * g.k / k_bands,
                    k1: (kb + 1) * g.k / k_bands,
                });
            }
        }
    }
    out
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// What the output transform applies to each output channel `k` as it writes it: `+ bias[k]`,
/// then PReLU with slope `slopes[k]` (an eval-mode BatchNorm folded into the kernel, and the
/// activation after it).
#[derive(Clone, Copy, Default)]
pub(crate) struct Epilogue<'a> {
    pub(crate) bias: Option<&'a [f32]>,
    pub(crate) slopes: Option<&'a [f32]>,
}

/// Forward of a convolution that [`supports`] `g`, with `u` from [`transform_kernels`].
pub(crate) fn forward(
    g: &Geometry,
    x: &[f32],
    u: &[f32],
    epilogue: Epilogue,
    threads: usize,
    max_isa: Isa,
) -> Vec<f32> {
    let isa = max_isa.capped();
    let (th, tw) = tiles(g);
    let (x_len, y_len) = (g.c * g.h * g.w, g.k * g.ho * g.wo);
    debug_assert!(supports(g));
    debug_assert_eq!((x.len(), u.len()), (g.n * x_len, TILE * g.k * g.c));
    let mut y = Unwritten::new(g.n * y_len);
    let out = SharedOut(y.as_mut_ptr());
    let items = items(g, threads);
    let widest = items
        .iter()
        .map(|it| it.tiles(tw))
        .max()
        .unwrap_or(0);
    let k_widest = items.iter().map(|it| it.k1 - it.k0).max().unwrap_or(0);
    let extra = match is_channels_last(g) {
        true => {
            let rows = items.iter().map(|it| it.ty1 - it.ty0).max().unwrap_or(0);
            channels_last::scratch_len(g, rows, tw, k_widest)
        }
        false => 16 * (tw + 1),
    };
    let lens = [TILE * g.c * widest, TILE * k_widest * widest, extra];
    debug_assert!(items.iter().all(|it| it.ty1 <= th));
    items.par_iter().for_each(|it| {
        with_scratch(lens.iter().sum(), |buf| {
            let (v, rest) = buf.split_at_mut(lens[0]);
            let (m, scratch) = rest.split_at_mut(lens[1]);
            let t = it.tiles(tw);
            let (v, m) = (
                &mut v[..TILE * g.c * t],
                &mut m[..TILE * (it.k1 - it.k0) * t],
            );
            run_item(&mut Work {
                g,
                it,
                tw,
                u,
                x,
                v,
                m,
                scratch,
                y: out,
                epilogue,
                isa,
            });
        });
    });
    // SAFETY: the items cover every image, output channel and tile row of `y` once
    // (`items_cover_each_image_once`), and an item's output transform writes every output
    // pixel of its block.
    unsafe { y.assume_written() }
}

impl Item {
    /// Tiles (GEMM columns) of the item, `tw` tiles a row.
    fn tiles(&self, tw: usize) -> usize {
        (self.i1 - self.i0) * (self.ty1 - self.ty0) * tw
    }
}

/// One item's operands and buffers.
struct Work<'a> {
    g: &'a Geometry,
    it: &'a Item,
    tw: usize,
    u: &'a [f32],
    /// The whole batch.
    x: &'a [f32],
    v: &'a mut [f32],
    m: &'a mut [f32],
    /// The row transforms' buffer, or the channels-last copies ([`channels_last::scratch_len`]).
    scratch: &'a mut [f32],
    /// The whole batch's output; the item writes its own block.
    y: SharedOut,
    epilogue: Epilogue<'a>,
    /// A level the CPU has.
    isa: Isa,
}

/// Runs one item, its transforms compiled for `w.isa` (see [`crate::isa`]).
fn run_item(w: &mut Work) {
    #[cfg(target_arch = "x86_64")]
    match w.isa {
        // SAFETY: `w.isa` is capped to what the CPU has.
        Isa::Avx512 => return unsafe { run_item_avx512(w) },
        Isa::Avx2 => return unsafe { run_item_avx2(w) },
        Isa::Generic => {}
    }
    run_item_generic(w)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_item_avx512(w: &mut Work) {
    run_item_generic(w)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_item_avx2(w: &mut Work) {
    run_item_generic(w)
}

/// Input transforms of every channel, the 16 GEMMs, the output transform.
#[inline(always)]
fn run_item_generic(w: &mut Work) {
    let (g, it, tw) = (w.g, w.it, w.tw);
    if is_channels_last(g) {
        let (v, m, scratch) = (&mut *w.v, &mut *w.m, &mut *w.scratch);
        return channels_last::run(g, it, tw, w.u, w.x, v, m, scratch, w.y.ptr(), w.epilogue);
    }
    let t = it.tiles(tw);
    let per_image = (it.ty1 - it.ty0) * tw;
    let kb = it.k1 - it.k0;
    let (v, m, rows) = (&mut *w.v, &mut *w.m, &mut *w.scratch);
    let x_len = g.c * g.h * g.w;
    for (j, image) in (it.i0..it.i1).enumerate() {
        let x_img = &w.x[image * x_len..][..x_len];
        for (ci, plane) in x_img.chunks_exact(g.h * g.w).enumerate() {
            let at = Columns { first: j * per_image, all: t };
            input_tiles(g, plane, it.ty0..it.ty1, rows, v, ci, at, w.isa);
        }
    }
    for e in 0..TILE {
        let lhs = Mat { ptr: w.u[e * g.k * g.c + it.k0..].as_ptr(), rs: 1, cs: g.k as isize };
        let rhs = row_major(v[e * g.c * t..].as_ptr(), t);
        let dst = row_major(m[e * kb * t..].as_mut_ptr(), t);
        matmul((kb, t, g.c), dst, false, lhs, rhs, Parallelism::None);
    }
    let y_len = g.k * g.ho * g.wo;
    for (j, image) in (it.i0..it.i1).enumerate() {
        // SAFETY: the item's images, output channels and rows are its own block of `y`.
        let y_img = unsafe { w.y.ptr().add(image * y_len) };
        let at = Columns { first: j * per_image, all: t };
        output_tiles(g, m, it, tw, at, rows, y_img, w.epilogue, w.isa);
    }
}

/// Where one image's tiles sit among the columns of `V` and `M`: from `first`, of `all`.
#[derive(Clone, Copy)]
struct Columns {
    first: usize,
    all: usize,
}

thread_local! {
    /// Each thread's buffer for transformed inputs, products and row transforms, kept across
    /// calls: allocating it per call cost a page fault per 4 KB, 10% of a 56x56 layer.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's scratch buffer, grown to at least `len` floats. Callers hold no
/// other borrow of it: `f` itself starts no parallel work that could land on this thread.
fn with_scratch(len: usize, f: impl FnOnce(&mut [f32])) {
    SCRATCH.with_borrow_mut(|buf| {
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
        f(&mut buf[..len]);
    });
}

/// Writes `V = B^T d B` of channel `ci`'s tiles in tile rows `tys` into `v` (16 matrices
/// `C x at.all`, the image's tiles in columns `at.first + ` their index in the band), with `B^T =
/// [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]`. The input rows are split
/// into even and odd columns first, so every loop below runs over unit strides and
/// vectorizes.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn input_tiles(
    g: &Geometry,
    plane: &[f32],
    tys: std::ops::Range<usize>,
    rows: &mut [f32],
    v: &mut [f32],
    ci: usize,
    at: Columns,
    isa: Isa,
) {
    let (_, tw) = tiles(g);
    let t = at.all;
    // Tile `tx` reads padded columns 2 tx .. 2 tx + 4: evens `tx, tx + 1`, odds `tx, tx + 1`.
    let half = tw + 1;
    let (ev, rest) = rows.split_at_mut(4 * half);
    let (od, rest) = rest.split_at_mut(4 * half);
    let (bev, bod) = rest.split_at_mut(4 * half);
    for (band_row, ty) in tys.enumerate() {
        for r in 0..4 {
            let (e, o) = (&mut ev[r * half..][..half], &mut od[r * half..][..half]);
            e.fill(0.0);
            o.fill(0.0);
            let Some(iy) = (2 * ty + r).checked_sub(g.pad).filter(|&iy| iy < g.h) else {
                continue;
            };
            // Padded column `j` is input column `j - pad`; even `j` go to `e[j / 2]`, odd ones
            // to `o[j / 2]`. Pairs of input columns, so that the loop vectorizes.
            let src = &plane[iy * g.w..][..g.w.min(2 * half - g.pad)];
            let at = g.pad / 2;
            // Input column 2k goes to `first[at + k]`, 2k + 1 to `second[at + k + pad % 2]`.
            let (first, second) = match g.pad % 2 {
                0 => (&mut *e, &mut *o),
                _ => (&mut *o, &mut *e),
            };
            let n = src.len() / 2;
            pairs::split(isa, src, &mut first[at..], &mut second[at + g.pad % 2..]);
            if src.len() % 2 == 1 {
                first[at + n] = src[2 * n];
            }
        }
        // Rows of B^T d: b_0 = d_0 - d_2, b_1 = d_1 + d_2, b_2 = d_2 - d_1, b_3 = d_1 - d_3.
        for (src, dst) in [(&*ev, &mut *bev), (&*od, &mut *bod)] {
            let d = |r: usize| &src[r * half..][..half];
            let (d0, d1, d2, d3) = (d(0), d(1), d(2), d(3));
            let (b0, rest) = dst.split_at_mut(half);
            let (b1, rest) = rest.split_at_mut(half);
            let (b2, b3) = rest.split_at_mut(half);
            for m in 0..half {
                b0[m] = d0[m] - d2[m];
                b1[m] = d1[m] + d2[m];
                b2[m] = d2[m] - d1[m];
                b3[m] = d1[m] - d3[m];
            }
        }
        // Columns: (B^T d) B, the same four combinations across each tile's columns.
        let col0 = ci * t + at.first + band_row * tw;
        for i in 0..4 {
            let (e, o) = (&bev[i * half..][..half], &bod[i * half..][..half]);
            let at = |j: usize| ((4 * i + j) * g.c) * t + col0;
            let (v0, rest) = v[at(0)..].split_at_mut(g.c * t);
            let (v1, rest) = rest.split_at_mut(g.c * t);
            let (v2, v3) = rest.split_at_mut(g.c * t);
            let (v0, v1, v2, v3) = (&mut v0[..tw], &mut v1[..tw], &mut v2[..tw], &mut v3[..tw]);
            let (e0, e1, o0, o1) = (&e[..tw], &e[1..=tw], &o[..tw], &o[1..=tw]);
            for tx in 0..tw {
                v0[tx] = e0[tx] - e1[tx];
                v1[tx] = o0[tx] + e1[tx];
                v2[tx] = e1[tx] - o0[tx];
                v3[tx] = o0[tx] - o1[tx];
            }
        }
    }
}

/// Scatters `A^T M A` of the item's tiles into the image at `y_img` (`K x Ho x Wo`), with
/// `A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]`; `m` holds 16 matrices `kb x at.all`, the image's
/// tiles in columns from `at.first`. `rows` is scratch for one tile row's `A^T M` (8 rows of
/// `tw`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn output_tiles(
    g: &Geometry,
    m: &[f32],
    it: &Item,
    tw: usize,
    at: Columns,
    rows: &mut [f32],
    y_img: *mut f32,
    epilogue: Epilogue,
    isa: Isa,
) {
    let t = at.all;
    let kb = it.k1 - it.k0;
    let plane = g.ho * g.wo;
    let full = g.wo / 2;
    for kk in 0..kb {
        // SAFETY: channel `it.k0 + kk` of the image belongs to this item in rows
        // `2 * ty0 .. 2 * ty1` (clipped to Ho), written nowhere else.
        let y = unsafe { std::slice::from_raw_parts_mut(y_img.add((it.k0 + kk) * plane), plane) };
        for (band_row, ty) in (it.ty0..it.ty1).enumerate() {
            let e = |el: usize| &m[el * kb * t + kk * t + at.first + band_row * tw..][..tw];
            for dy in 0..2 {
                let oy = 2 * ty + dy;
                if oy >= g.ho {
                    break;
                }
                // Row dy of A^T M, for each tile column j: m_0j + m_1j + m_2j (dy 0) or
                // m_1j - m_2j - m_3j (dy 1).
                for j in 0..4 {
                    let r = &mut rows[j * tw..][..tw];
                    let (a, b, c) = (e(4 * dy + j), e(4 * dy + 4 + j), e(4 * dy + 8 + j));
                    if dy == 0 {
                        for x in 0..tw {
                            r[x] = a[x] + b[x] + c[x];
                        }
                    } else {
                        for x in 0..tw {
                            r[x] = a[x] - b[x] - c[x];
                        }
                    }
                }
                let (r, pair) = rows.split_at_mut(4 * tw);
                let (r0, r1, r2, r3) = (
                    &r[..tw],
                    &r[tw..2 * tw],
                    &r[2 * tw..3 * tw],
                    &r[3 * tw..4 * tw],
                );
                let (even, odd) = pair[..2 * tw].split_at_mut(tw);
                for tx in 0..tw {
                    even[tx] = r0[tx] + r1[tx] + r2[tx];
                    odd[tx] = r1[tx] - r2[tx] - r3[tx];
                }
                let k = it.k0 + kk;
                if let Some(bias) = epilogue.bias {
                    let b = bias[k];
                    even.iter_mut().chain(odd.iter_mut()).for_each(|v| *v += b);
                }
                if let Some(slopes) = epilogue.slopes {
                    let a = slopes[k];
                    even.iter_mut()
                        .chain(odd.iter_mut())
                        .for_each(|v| *v = if *v > 0.0 { *v } else { a * *v });
                }
                let row = &mut y[oy * g.wo..][..g.wo];
                pairs::merge(isa, even, odd, &mut row[..2 * full]);
                if full < tw {
                    row[2 * full] = even[full];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct 3x3 convolution of one image, the reference.
    fn direct(g: &Geometry, x: &[f32], w: &[f32]) -> Vec<f32> {
        let mut y = vec![0f32; g.n * g.k * g.ho * g.wo];
        for n in 0..g.n {
            for k in 0..g.k {
                for oy in 0..g.ho {
                    for ox in 0..g.wo {
                        let mut s = 0f64;
                        for c in 0..g.c {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let (iy, ix) = (
                                        (oy + ky) as isize - g.pad as isize,
                                        (ox + kx) as isize - g.pad as isize,
                                    );
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let xv =
                                        x[((n * g.c + c) * g.h + iy as usize) * g.w + ix as usize];
                                    s += (xv * w[((k * g.c + c) * 3 + ky) * 3 + kx]) as f64;
                                }
                            }
                        }
                        y[((n * g.k + k) * g.ho + oy) * g.wo + ox] = s as f32;
                    }
                }
            }
        }
        y
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        // A fixed, sign-changing sequence (no RNG dependency in the unit test).
        (0..len)
            .map(|i| {
                (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 2001) as f32
                    / 1000.0
                    - 1.0
            })
            .collect()
    }

    /// Along rows and along channels, whole images, bands of rows and groups of images.
    #[test]
    fn matches_the_direct_sum_on_odd_even_sizes_and_paddings() {
        for (n, c, k, h, w, pad) in [
            (1, 3, 5, 7, 7, 1),
            (2, 4, 3, 6, 9, 1),
            (1, 2, 2, 5, 4, 0),
            (3, 5, 6, 4, 3, 2),
            (1, 1, 1, 1, 1, 1),
            (20, 3, 4, 7, 7, 1),
            (2, 3, 4, 18, 21, 1),
            (1, 2, 3, 20, 17, 0),
            (2, 3, 4, 30, 33, 1),
            (1, 64, 64, 24, 24, 1),
        ] {
            let g = Geometry::new("test", &[n, c, h, w], &[k, c, 3, 3], 1, pad).unwrap();
            let (x, wt) = (values(n * c * h * w, 1), values(k * c * 9, 7));
            let want = direct(&g, &x, &wt);
            let u = transform_kernels(&wt, k, c);
            for (threads, isa) in [1, 2, 3, 7].into_iter().flat_map(|t| Isa::available().into_iter().map(move |i| (t, i))) {
                let got = forward(&g, &x, &u, Epilogue::default(), threads, isa);
                assert!(got.iter().all(|v| v.is_finite()), "an output left unwritten");
                let err = got
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(
                    err < 1e-5,
                    "{n}x{c}x{h}x{w} k{k} pad {pad}, {threads} threads, {isa:?}: max err {err}"
                );
            }
        }
        // The 64-channel map above is cut into bands of tile rows.
        let g = Geometry::new("test", &[1, 64, 24, 24], &[64, 64, 3, 3], 1, 1).unwrap();
        assert!(items(&g, 1).len() > 1);
    }

    #[test]
    fn items_cover_each_image_once() {
        for (n, c, k, side) in [
            (1, 64, 64, 56),
            (1, 256, 256, 14),
            (1, 512, 512, 7),
            (3, 64, 64, 112),
            (32, 128, 128, 28),
            (32, 512, 512, 7),
            (5, 256, 256, 14),
        ] {
            let g = Geometry::new("test", &[n, c, side, side], &[k, c, 3, 3], 1, 1).unwrap();
            let (th, _) = tiles(&g);
            for threads in [1, 2, 5] {
                let mut hits = vec![0u8; n * th * k];
                for it in items(&g, threads) {
                    for image in it.i0..it.i1 {
                        for ty in it.ty0..it.ty1 {
                            for kk in it.k0..it.k1 {
                                hits[(image * th + ty) * k + kk] += 1;
                            }
                        }
                    }
                }
                assert!(
                    hits.iter().all(|&h| h == 1),
                    "{n}x{c}x{side} k{k}, {threads} threads"
                );
                assert!(items(&g, threads).len() >= threads.min(th * k * n));
            }
        }
    }
}
