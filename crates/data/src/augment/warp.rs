//! The geometric step: one affine warp (zoom, aspect, shift, rotation and flip folded into a
//! single 2x3 matrix, so the image is resampled once), bilinear, with replicated or reflected
//! borders as OpenCV's `warpAffine(..., WARP_INVERSE_MAP, BORDER_REPLICATE |
//! BORDER_REFLECT_101)`; and the plain horizontal flip, which needs no resampling.
//!
//! Hand-written rather than borrowed: `image`'s affine helpers fill borders with a constant
//! and `imageproc` would be a heavy dependency for thirty lines. Tested against a numpy
//! reference and OpenCV (`tests/augment_reference.rs`).

use super::{round_u8, Border};

/// A 2x3 matrix mapping output pixel coordinates `(x, y, 1)` to source coordinates (the
/// inverse map; pixel centres at integers, as OpenCV).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine(pub [[f64; 3]; 2]);

impl Affine {
    /// The identity map.
    pub const IDENTITY: Affine = Affine([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]);

    /// The map of a random-resized-crop style jitter of a `width x height` image: the output
    /// shows a window of `area` times the image's area, `ratio` times wider (relative to its
    /// height) than the image (for the square faces of the cache: width / height), centred `(dx, dy)` pixels off the image centre, rotated by `degrees` about that centre
    /// and mirrored left-right when `flip`. `area = ratio = 1`, no shift, no rotation, no flip
    /// is the identity.
    pub fn jitter(
        width: usize,
        height: usize,
        area: f64,
        ratio: f64,
        shift: [f64; 2],
        degrees: f64,
        flip: bool,
    ) -> Self {
        let (w, h) = (width as f64, height as f64);
        // Window side over image side, per axis: kx * ky = area, kx / ky = ratio.
        let (kx, ky) = ((area * ratio).sqrt(), (area / ratio).sqrt());
        let (sin, cos) = degrees.to_radians().sin_cos();
        let fx = if flip { -kx } else { kx };
        let a = [[cos * fx, -sin * ky], [sin * fx, cos * ky]];
        let (cx, cy) = ((w - 1.0) / 2.0, (h - 1.0) / 2.0);
        Affine([
            [a[0][0], a[0][1], cx + shift[0] - (a[0][0] * cx + a[0][1] * cy)],
            [a[1][0], a[1][1], cy + shift[1] - (a[1][0] * cx + a[1][1] * cy)],
        ])
    }
}

/// The source index of (possibly outside) index `i` along an axis of `n` pixels.
#[inline]
pub(super) fn fold(i: i64, n: usize, border: Border) -> usize {
    let n = n as i64;
    if (0..n).contains(&i) {
        return i as usize;
    }
    match border {
        Border::Replicate => i.clamp(0, n - 1) as usize,
        Border::Reflect if n == 1 => 0,
        Border::Reflect => {
            // Reflect-101 is periodic with period 2(n - 1): fold into one period, then mirror.
            let period = 2 * (n - 1);
            let j = i.rem_euclid(period);
            (if j >= n { period - j } else { j }) as usize
        }
    }
}

/// `v.floor()` as an integer without libm's `floor` (a call on x86-64 without SSE4.1),
/// clamped far outside any image (where the border folding takes over) so `+ 1` cannot
/// overflow; NaN gives 0.
#[inline]
fn floor(v: f64) -> i64 {
    const FAR: f64 = (1u64 << 40) as f64;
    let v = v.clamp(-FAR, FAR);
    let t = v as i64;
    if (t as f64) > v {
        t - 1
    } else {
        t
    }
}

/// Warps the `width x height` RGB (HWC u8) image `src` into `dst` (same size): each output
/// pixel samples `src` at `m (x, y)`, blended bilinearly from its 2x2 neighbourhood (in f64,
/// which costs no more than f32 in this scalar loop and keeps values that should be exact
/// halves exact; rounded to nearest, ties to even).
pub fn warp_affine(src: &[u8], width: usize, height: usize, m: &Affine, border: Border, dst: &mut [u8]) {
    assert_eq!(src.len(), width * height * 3, "source is not {width}x{height} RGB");
    assert_eq!(dst.len(), src.len(), "destination size differs from the source");
    let [[a, b, c], [d, e, f]] = m.0;
    let (w, h) = (width as i64, height as i64);
    for (y, row) in dst.chunks_exact_mut(width * 3).enumerate() {
        let yf = y as f64;
        for (x, out) in row.chunks_exact_mut(3).enumerate() {
            let xf = x as f64;
            let (sx, sy) = (a * xf + b * yf + c, d * xf + e * yf + f);
            let (ix, iy) = (floor(sx), floor(sy));
            let (ax, ay) = (sx - ix as f64, sy - iy as f64);
            // Most samples have all four neighbours inside: skip the border folding there.
            let (c0, c1, r0, r1) = if ix >= 0 && iy >= 0 && ix + 1 < w && iy + 1 < h {
                let (ix, iy) = (ix as usize, iy as usize);
                (ix * 3, ix * 3 + 3, iy * width * 3, (iy + 1) * width * 3)
            } else {
                (
                    fold(ix, width, border) * 3,
                    fold(ix + 1, width, border) * 3,
                    fold(iy, height, border) * width * 3,
                    fold(iy + 1, height, border) * width * 3,
                )
            };
            let (p00, p01) = (&src[r0 + c0..][..3], &src[r0 + c1..][..3]);
            let (p10, p11) = (&src[r1 + c0..][..3], &src[r1 + c1..][..3]);
            for ch in 0..3 {
                let top = (1.0 - ax) * f64::from(p00[ch]) + ax * f64::from(p01[ch]);
                let bottom = (1.0 - ax) * f64::from(p10[ch]) + ax * f64::from(p11[ch]);
                out[ch] = round_u8((1.0 - ay) * top + ay * bottom);
            }
        }
    }
}

/// Mirrors a `width`-pixel-wide HWC image with `channels` channels left-right, in place.
pub fn flip_horizontal(pixels: &mut [u8], width: usize, channels: usize) {
    let row_len = width * channels;
    if row_len == 0 {
        return;
    }
    for row in pixels.chunks_exact_mut(row_len) {
        for x in 0..width / 2 {
            let (l, r) = (x * channels, (width - 1 - x) * channels);
            for c in 0..channels {
                row.swap(l + c, r + c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 5x4 RGB image whose pixel (x, y) is [10y + x, 100 + x, 200 - y].
    fn image() -> Vec<u8> {
        (0..4u8).flat_map(|y| (0..5u8).flat_map(move |x| [10 * y + x, 100 + x, 200 - y])).collect()
    }

    #[test]
    fn flips_rows_and_keeps_channels() {
        // 3 wide, 2 high, 2 channels; pixel (x, y) = [10y + x, 100 + x].
        let mut px: Vec<u8> = (0..2).flat_map(|y| (0..3).flat_map(move |x| [10 * y + x, 100 + x])).collect();
        flip_horizontal(&mut px, 3, 2);
        assert_eq!(px, vec![2, 102, 1, 101, 0, 100, 12, 102, 11, 101, 10, 100]);
        flip_horizontal(&mut px, 3, 2);
        assert_eq!(px[0..2], [0, 100]);
    }

    #[test]
    fn identity_copies_and_the_flip_matrix_equals_the_flip() {
        let src = image();
        let mut out = vec![0; src.len()];
        for border in [Border::Replicate, Border::Reflect] {
            warp_affine(&src, 5, 4, &Affine::IDENTITY, border, &mut out);
            assert_eq!(out, src);
            warp_affine(&src, 5, 4, &Affine::jitter(5, 4, 1.0, 1.0, [0.0; 2], 0.0, false), border, &mut out);
            assert_eq!(out, src);
            warp_affine(&src, 5, 4, &Affine::jitter(5, 4, 1.0, 1.0, [0.0; 2], 0.0, true), border, &mut out);
            let mut flipped = src.clone();
            flip_horizontal(&mut flipped, 5, 3);
            assert_eq!(out, flipped);
        }
    }

    #[test]
    fn jitter_matrix_by_hand() {
        // 90 degrees about the centre (1.5, 1.5) of a 4x4 image, half the area, shifted (1, 0):
        // k = sqrt(0.5); x' = cx + 1 - k (y - cy), y' = cy + k (x - cx).
        let m = Affine::jitter(4, 4, 0.5, 1.0, [1.0, 0.0], 90.0, false).0;
        let k = 0.5f64.sqrt();
        let want = [[0.0, -k, 2.5 + k * 1.5], [k, 0.0, 1.5 - k * 1.5]];
        for (r, w) in m.iter().zip(want) {
            for (a, b) in r.iter().zip(w) {
                assert!((a - b).abs() < 1e-12, "{m:?}");
            }
        }
        // A 2:1 window on a square image: twice as wide as high, area kept.
        let m = Affine::jitter(8, 8, 1.0, 2.0, [0.0; 2], 0.0, false).0;
        assert!((m[0][0] - 2f64.sqrt()).abs() < 1e-12 && (m[1][1] - 0.5f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn borders_fold_like_opencv() {
        let idx = |b| (-5..9).map(|i| fold(i, 4, b)).collect::<Vec<_>>();
        assert_eq!(idx(Border::Replicate), [0, 0, 0, 0, 0, 0, 1, 2, 3, 3, 3, 3, 3, 3]);
        // gfedcb|abcdefgh|gfedcba on 4 pixels: ... 3 2 1 | 0 1 2 3 | 2 1 0 1 2 ...
        assert_eq!(idx(Border::Reflect), [1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2]);
        assert_eq!(fold(-3, 1, Border::Reflect), 0);
    }

    #[test]
    fn absurd_matrices_sample_the_border_without_panicking() {
        let src = image();
        let mut out = vec![0; src.len()];
        for m in [[[1e300, 0.0, 0.0], [0.0, -1e300, 0.0]], [[f64::NAN, 0.0, 0.0], [0.0, f64::INFINITY, 1.0]]] {
            for border in [Border::Replicate, Border::Reflect] {
                warp_affine(&src, 5, 4, &Affine(m), border, &mut out);
            }
        }
        assert_eq!((floor(-0.5), floor(2.0), floor(-3.0), floor(f64::NAN)), (-1, 2, -3, 0));
    }

    #[test]
    fn a_half_pixel_shift_averages_neighbours() {
        let src = image();
        let mut out = vec![0; src.len()];
        let m = Affine([[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]]);
        warp_affine(&src, 5, 4, &m, Border::Replicate, &mut out);
        // Red of (0, 0) blends 0 and 1 -> 0.5 -> 0 (ties to even); of (1, 0): 1.5 -> 2.
        assert_eq!((out[0], out[3]), (0, 2));
        // The last column blends with itself (replicated).
        assert_eq!(out[4 * 3], src[4 * 3]);
    }
}
