//! Five-point face alignment as InsightFace's `face_align.norm_crop`: estimate the similarity
//! transform (rotation, uniform scale, translation) that maps the detected landmarks onto the
//! ArcFace template by least squares (Umeyama's method, as skimage's `SimilarityTransform`),
//! then warp the photo with it as OpenCV's `warpAffine` does: bilinear, border 0. Against
//! opencv-python 5.0 on synthetic pictures (tests/align.rs), a few dozen of the 37,632 values
//! of a crop differ, each by 1.
//!
//! References: Umeyama, "Least-squares estimation of transformation parameters between two
//! point patterns", PAMI 1991; InsightFace `python-package/insightface/utils/face_align.py`;
//! OpenCV `imgproc` (`warpAffine`, `invertAffineTransform`).

use image::{Rgb, RgbImage};

use crate::{Error, Result};

/// The ArcFace template for 112x112 crops, (x, y) of: left eye, right eye, nose tip, left and
/// right mouth corners (InsightFace's `arcface_dst`).
pub const ARCFACE_TEMPLATE: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// A similarity transform `[x', y'] = [[a, -b], [b, a]] [x, y] + [tx, ty]` (as a 2x3 matrix,
/// `[[a, -b, tx], [b, a, ty]]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    /// `scale * cos(angle)`.
    pub a: f64,
    /// `scale * sin(angle)`.
    pub b: f64,
    /// Horizontal translation.
    pub tx: f64,
    /// Vertical translation.
    pub ty: f64,
}

impl Similarity {
    /// The least-squares similarity taking `src` points onto `dst` points (Umeyama with scale,
    /// no reflection). In 2-D the optimal `(a, b)` have a closed form: with both point sets
    /// centred, `a = sum(p . q) / sum |p|^2` and `b = sum(p x q) / sum |p|^2`.
    pub fn estimate(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Result<Similarity> {
        let degenerate = |why: &str| Err(Error::DegenerateLandmarks(why.into()));
        if src.len() != dst.len() || src.len() < 2 {
            return degenerate("need two or more point pairs, as many in each set");
        }
        let n = src.len() as f64;
        let mean = |pts: &[[f32; 2]]| {
            let (sx, sy) = pts.iter().fold((0.0, 0.0), |(x, y), p| (x + p[0] as f64, y + p[1] as f64));
            (sx / n, sy / n)
        };
        let ((mx, my), (nx, ny)) = (mean(src), mean(dst));
        let (mut dot, mut cross, mut norm) = (0.0, 0.0, 0.0);
        for (p, q) in src.iter().zip(dst) {
            let (px, py) = (p[0] as f64 - mx, p[1] as f64 - my);
            let (qx, qy) = (q[0] as f64 - nx, q[1] as f64 - ny);
            dot += px * qx + py * qy;
            cross += px * qy - py * qx;
            norm += px * px + py * py;
        }
        if !(norm > 0.0 && norm.is_finite() && dot.is_finite() && cross.is_finite()) {
            return degenerate("the source points coincide or are not finite");
        }
        let (a, b) = (dot / norm, cross / norm);
        Ok(Similarity { a, b, tx: nx - (a * mx - b * my), ty: ny - (b * mx + a * my) })
    }

    /// The 2x3 matrix `[[a, -b, tx], [b, a, ty]]`.
    pub fn matrix(&self) -> [[f64; 3]; 2] {
        [[self.a, -self.b, self.tx], [self.b, self.a, self.ty]]
    }
}

/// The aligned `size x size` face of `image` with the given landmarks (five (x, y) points in
/// [`ARCFACE_TEMPLATE`]'s order), as InsightFace's `norm_crop(img, landmark, image_size)`:
/// the template is scaled by `size / 112` (InsightFace does the same for multiples of 112 and
/// uses a 128-pixel frame for other sizes; see [`crate::finder::aligned_crop`] for small crops).
pub fn norm_crop(image: &RgbImage, landmarks: &[[f32; 2]; 5], size: u32) -> Result<RgbImage> {
    if size == 0 || size > 4096 {
        return Err(Error::InvalidSize(size));
    }
    let ratio = size as f32 / 112.0;
    let dst = ARCFACE_TEMPLATE.map(|[x, y]| [x * ratio, y * ratio]);
    let m = Similarity::estimate(landmarks, &dst)?;
    Ok(warp_affine(image, &m.matrix(), size, size))
}

/// `cv::warpAffine(src, M, (width, height), INTER_LINEAR, BORDER_CONSTANT, 0)` for a 2x3
/// matrix `m` mapping source to destination pixels: each destination pixel samples the source
/// at `M^-1 (x, y)` (double precision), blended bilinearly from its 2x2 neighbourhood with
/// pixels outside the image taken as 0, and rounded to nearest.
pub fn warp_affine(src: &RgbImage, m: &[[f64; 3]; 2], width: u32, height: u32) -> RgbImage {
    let inv = invert_affine(m);
    let mut out = RgbImage::new(width, height);
    for y in 0..height {
        for x in 0..width {
            let (xf, yf) = (x as f64, y as f64);
            let sx = inv[0][0] * xf + inv[0][1] * yf + inv[0][2];
            let sy = inv[1][0] * xf + inv[1][1] * yf + inv[1][2];
            out.put_pixel(x, y, sample(src, sx, sy));
        }
    }
    out
}

/// The bilinear sample of `src` at `(sx, sy)`, outside pixels being 0.
fn sample(src: &RgbImage, sx: f64, sy: f64) -> Rgb<u8> {
    let (x0, y0) = (sx.floor(), sy.floor());
    let (w, h) = (src.width() as f64, src.height() as f64);
    if !(x0 >= -1.0 && y0 >= -1.0 && x0 < w && y0 < h) {
        return Rgb([0; 3]);
    }
    let (ax, ay) = ((sx - x0) as f32, (sy - y0) as f32);
    let (ix, iy) = (x0 as i64, y0 as i64);
    let at = |x: i64, y: i64| -> [f32; 3] {
        if x >= 0 && y >= 0 && (x as f64) < w && (y as f64) < h {
            src.get_pixel(x as u32, y as u32).0.map(f32::from)
        } else {
            [0.0; 3]
        }
    };
    let (p00, p01, p10, p11) = (at(ix, iy), at(ix + 1, iy), at(ix, iy + 1), at(ix + 1, iy + 1));
    Rgb(std::array::from_fn(|c| {
        let v = (1.0 - ay) * ((1.0 - ax) * p00[c] + ax * p01[c]) + ay * ((1.0 - ax) * p10[c] + ax * p11[c]);
        v.round_ties_even().clamp(0.0, 255.0) as u8
    }))
}

/// `cv::invertAffineTransform` in double precision.
fn invert_affine(m: &[[f64; 3]; 2]) -> [[f64; 3]; 2] {
    let d = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    let d = if d != 0.0 { 1.0 / d } else { 0.0 };
    let (a11, a22) = (m[1][1] * d, m[0][0] * d);
    let (a12, a21) = (-m[0][1] * d, -m[1][0] * d);
    let b1 = -a11 * m[0][2] - a12 * m[1][2];
    let b2 = -a21 * m[0][2] - a22 * m[1][2];
    [[a11, a12, b1], [a21, a22, b2]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_recovers_a_known_similarity_and_refuses_coinciding_points() {
        let m = Similarity { a: 1.3 * 0.3f64.cos(), b: 1.3 * 0.3f64.sin(), tx: -20.0, ty: 7.5 };
        let dst: Vec<[f32; 2]> = ARCFACE_TEMPLATE
            .iter()
            .map(|&[x, y]| {
                let (x, y) = (x as f64, y as f64);
                [(m.a * x - m.b * y + m.tx) as f32, (m.b * x + m.a * y + m.ty) as f32]
            })
            .collect();
        let got = Similarity::estimate(&ARCFACE_TEMPLATE, &dst).unwrap();
        for (g, w) in [(got.a, m.a), (got.b, m.b), (got.tx, m.tx), (got.ty, m.ty)] {
            assert!((g - w).abs() < 1e-4, "{got:?} vs {m:?}");
        }
        assert!(Similarity::estimate(&[[1.0, 1.0]; 5], &ARCFACE_TEMPLATE).is_err());
        assert!(Similarity::estimate(&[[f32::NAN, 1.0]; 5], &ARCFACE_TEMPLATE).is_err());
    }

    #[test]
    fn the_identity_warp_copies_and_a_shift_leaves_a_black_border() {
        let img = RgbImage::from_fn(9, 7, |x, y| Rgb([(x * 20) as u8, (y * 30) as u8, 7]));
        let same = warp_affine(&img, &[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], 9, 7);
        assert_eq!(same, img);
        // Shifted by 2 pixels: the uncovered border is 0 (BORDER_CONSTANT).
        let moved = warp_affine(&img, &[[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]], 9, 7);
        assert_eq!(moved.get_pixel(0, 3).0, [0, 0, 0]);
        assert_eq!(moved.get_pixel(5, 3), img.get_pixel(3, 3));
    }
}
