//! Colour jitter and grayscale on HWC RGB u8 images, with torchvision's formulas for uint8
//! tensors (`torchvision.transforms.functional` 0.2x, `_functional_tensor.py`), so a recipe
//! tuned in PyTorch means the same here:
//!
//! - gray level `L = trunc(0.2989 R + 0.587 G + 0.114 B)` (ITU-R 601-2 luma, `rgb_to_grayscale`);
//! - `_blend(img, other, f) = trunc(clamp(f * img + (1 - f) * other, 0, 255))` in f32;
//! - brightness blends with black, contrast with the mean gray level of the whole image,
//!   saturation with each pixel's gray level.
//!
//! Tested bit for bit against torchvision (`tests/augment_reference.rs`).

/// One colour-jitter operation (torchvision's `ColorJitter` applies them in a random order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorOp {
    /// [`adjust_brightness`].
    Brightness,
    /// [`adjust_contrast`].
    Contrast,
    /// [`adjust_saturation`].
    Saturation,
}

impl ColorOp {
    /// Applies the operation with `factor` to an RGB image in place.
    pub fn apply(self, pixels: &mut [u8], factor: f64) {
        match self {
            ColorOp::Brightness => adjust_brightness(pixels, factor),
            ColorOp::Contrast => adjust_contrast(pixels, factor),
            ColorOp::Saturation => adjust_saturation(pixels, factor),
        }
    }
}

/// The gray level of one pixel: torch's f32 arithmetic, truncated as `.to(torch.uint8)`.
#[inline]
pub fn gray_level(p: &[u8]) -> u8 {
    (0.2989f32 * f32::from(p[0]) + 0.587f32 * f32::from(p[1]) + 0.114f32 * f32::from(p[2])) as u8
}

/// torchvision's `_blend` of `x` with `other`: both products in f32 (the `1 - f` in f64 first,
/// as Python computes it), summed, clamped and truncated.
#[inline]
fn blend(x: u8, other: f32, f: f32, g: f32) -> u8 {
    (f * f32::from(x) + g * other).clamp(0.0, 255.0) as u8
}

fn weights(factor: f64) -> (f32, f32) {
    (factor as f32, (1.0 - factor) as f32)
}

/// Replaces every value `x` by `blend(x, other)`, through a table of the 256 results: the
/// same bytes as computing each, several times faster.
fn blend_all(pixels: &mut [u8], other: f32, factor: f64) {
    let (f, g) = weights(factor);
    let table: [u8; 256] = std::array::from_fn(|x| blend(x as u8, other, f, g));
    for v in pixels.iter_mut() {
        *v = table[usize::from(*v)];
    }
}

/// `adjust_brightness(img, factor)`: scales every value (blend with black).
pub fn adjust_brightness(pixels: &mut [u8], factor: f64) {
    blend_all(pixels, 0.0, factor);
}

/// `adjust_contrast(img, factor)`: blends with the mean gray level of the image (the gray
/// levels truncated to u8 first, as torchvision does).
pub fn adjust_contrast(pixels: &mut [u8], factor: f64) {
    let n = pixels.len() / 3;
    if n == 0 {
        return;
    }
    // The integer sum is exact; torch's f32 sum is too below 2^24 (any image up to 256x256).
    let sum: u64 = pixels.chunks_exact(3).map(|p| u64::from(gray_level(p))).sum();
    let mean = sum as f32 / n as f32;
    blend_all(pixels, mean, factor);
}

/// `adjust_saturation(img, factor)`: blends each pixel with its own gray level.
pub fn adjust_saturation(pixels: &mut [u8], factor: f64) {
    let (f, g) = weights(factor);
    for p in pixels.chunks_exact_mut(3) {
        let l = f32::from(gray_level(p));
        for v in p.iter_mut() {
            *v = blend(*v, l, f, g);
        }
    }
}

/// `rgb_to_grayscale(img, num_output_channels=3)`: every channel set to the gray level.
pub fn to_grayscale(pixels: &mut [u8]) {
    for p in pixels.chunks_exact_mut(3) {
        let l = gray_level(p);
        p.fill(l);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factor_one_is_the_identity() {
        let src: Vec<u8> = (0..=255u8).chain(0..=254).collect(); // 511 values -> 170 pixels + 1
        let src = &src[..510];
        for op in [ColorOp::Brightness, ColorOp::Contrast, ColorOp::Saturation] {
            let mut px = src.to_vec();
            op.apply(&mut px, 1.0);
            assert_eq!(px, src, "{op:?}");
        }
    }

    #[test]
    fn gray_uses_itu_601_weights_and_truncates() {
        assert_eq!(gray_level(&[255, 255, 255]), 254); // 0.2989 + 0.587 + 0.114 = 0.9999
        assert_eq!(gray_level(&[100, 0, 0]), 29); // 29.89
        assert_eq!(gray_level(&[0, 100, 0]), 58); // 58.7
        assert_eq!(gray_level(&[0, 0, 100]), 11); // 11.4
        let mut px = vec![100, 0, 0, 0, 100, 0];
        to_grayscale(&mut px);
        assert_eq!(px, [29, 29, 29, 58, 58, 58]);
    }

    #[test]
    fn factor_zero_gives_the_blend_target() {
        let mut px = vec![10, 200, 30, 250, 0, 90];
        adjust_brightness(&mut px, 0.0);
        assert_eq!(px, [0; 6]);
        let mut px = vec![10, 200, 30, 250, 0, 90];
        adjust_saturation(&mut px, 0.0);
        let l = [gray_level(&[10, 200, 30]), gray_level(&[250, 0, 90])];
        assert_eq!(px, [l[0], l[0], l[0], l[1], l[1], l[1]]);
    }
}
