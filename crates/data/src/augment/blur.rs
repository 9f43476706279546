//! Gaussian blur of an HWC RGB u8 image, as `cv2.GaussianBlur(img, (0, 0), sigma)`: the
//! kernel size OpenCV picks for u8 images (`round(6 sigma + 1) | 1`), a normalized sampled
//! Gaussian, applied separably with reflect-101 borders (OpenCV's default), accumulated in
//! f32 and rounded once at the end, as torchvision's `gaussian_blur` with that kernel size
//! (equal bytes on the test fixture). OpenCV's own u8 path is fixed point and differs by one
//! level on a few percent of the values (`tests/augment_reference.rs` measures both).

use super::warp::fold;
use super::{round_u8, Border};

/// The kernel size OpenCV chooses for `sigma` on u8 images: odd, about 3 sigma each side.
pub fn kernel_size(sigma: f64) -> usize {
    ((sigma * 6.0 + 1.0).round_ties_even().max(1.0) as usize) | 1
}

/// The normalized 1-D Gaussian of `size` taps (`cv2.getGaussianKernel(size, sigma)`).
pub fn gaussian_kernel(size: usize, sigma: f64) -> Vec<f32> {
    let c = (size as f64 - 1.0) / 2.0;
    let raw: Vec<f64> = (0..size).map(|i| (-((i as f64 - c).powi(2)) / (2.0 * sigma * sigma)).exp()).collect();
    let total: f64 = raw.iter().sum();
    raw.iter().map(|v| (v / total) as f32).collect()
}

/// Blurs the `width x height` RGB image in place with a Gaussian of `sigma` pixels.
pub fn gaussian_blur(pixels: &mut [u8], width: usize, height: usize, sigma: f64) {
    assert_eq!(pixels.len(), width * height * 3, "image is not {width}x{height} RGB");
    if pixels.is_empty() || sigma.is_nan() || sigma <= 0.0 {
        return;
    }
    let kernel = gaussian_kernel(kernel_size(sigma), sigma);
    let r = kernel.len() / 2;
    let stride = width * 3;
    // Horizontal pass into f32, then vertical, so rounding happens once. Each pass is a sum
    // of shifted contiguous rows, which the compiler vectorizes (a per-pixel gather of
    // reflected indices ran ten times slower).
    let mut tmp = vec![0f32; pixels.len()];
    let mut padded = vec![0f32; (width + 2 * r) * 3];
    for (row_in, row_out) in pixels.chunks_exact(stride).zip(tmp.chunks_exact_mut(stride)) {
        for (i, p) in padded.chunks_exact_mut(3).enumerate() {
            let x = fold(i as i64 - r as i64, width, Border::Reflect) * 3;
            for c in 0..3 {
                p[c] = f32::from(row_in[x + c]);
            }
        }
        for (k, &w) in kernel.iter().enumerate() {
            for (o, &v) in row_out.iter_mut().zip(&padded[k * 3..k * 3 + stride]) {
                *o += w * v;
            }
        }
    }
    let mut acc = vec![0f32; stride];
    for (y, row_out) in pixels.chunks_exact_mut(stride).enumerate() {
        acc.fill(0.0);
        for (k, &w) in kernel.iter().enumerate() {
            let src_y = fold(y as i64 + k as i64 - r as i64, height, Border::Reflect);
            for (a, &v) in acc.iter_mut().zip(&tmp[src_y * stride..][..stride]) {
                *a += w * v;
            }
        }
        for (o, &a) in row_out.iter_mut().zip(&acc) {
            *o = round_u8(f64::from(a));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_sizes_match_opencv_for_u8() {
        // cv2.getGaussianKernel sizes chosen by GaussianBlur((0, 0), sigma) on CV_8U.
        assert_eq!([0.1, 0.5, 0.8, 1.0, 1.5, 2.0].map(kernel_size), [3, 5, 7, 7, 11, 13]);
        let k = gaussian_kernel(5, 1.0);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(k[2] > k[1] && k[1] == k[3]);
    }

    #[test]
    fn a_flat_image_stays_flat_and_tiny_sigma_is_the_identity() {
        let mut px = vec![77u8; 6 * 5 * 3];
        gaussian_blur(&mut px, 6, 5, 1.7);
        assert!(px.iter().all(|&v| v == 77));
        let src: Vec<u8> = (0..6 * 5 * 3).map(|i| (i * 37 % 256) as u8).collect();
        let mut px = src.clone();
        gaussian_blur(&mut px, 6, 5, 0.1);
        assert_eq!(px, src);
    }
}
