//! Training augmentation, done on the fly in the loader's worker threads on a copy of the
//! cached HWC u8 image (the cache keeps the decoded, aligned face unchanged).
//!
//! The steps, in torchvision's usual order: one affine warp that folds together a
//! random-resized-crop style zoom (area `scale`, `aspect` ratio), a shift (`translate`), a
//! small rotation (`rotate`) and the horizontal flip, sampled bilinearly with replicated or
//! reflected borders (`warp`); colour jitter in a random order (`brightness`, `contrast`,
//! `saturation`, torchvision's `ColorJitter` formulas on u8 images, `color`); random grayscale
//! (ITU-R 601 weights, `RandomGrayscale`); Gaussian blur (OpenCV's kernel size for a sigma,
//! `blur`). The flip alone is InsightFace's `arcface_torch` recipe and stays the default.
//!
//! Every random choice is a pure function of (seed, epoch, image index) (`rng`), so a resumed
//! or re-run epoch produces the same pixels whatever the thread schedule. Each parameter has
//! its own draw, so turning one step on or off does not change what the others do, and the
//! flip coin is the same as before the other steps existed.

use serde::{Deserialize, Serialize};

mod blur;
mod color;
mod plan;
mod rng;
mod warp;

pub use blur::{gaussian_blur, gaussian_kernel, kernel_size};
pub use color::{adjust_brightness, adjust_contrast, adjust_saturation, gray_level, to_grayscale, ColorOp};
pub use plan::Plan;
pub use rng::{image_hash, should_flip};
pub use warp::{flip_horizontal, warp_affine, Affine};

/// How the warp fills pixels that come from outside the source image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Border {
    /// The edge pixel repeated (`aaa|abcd|ddd`, OpenCV's `BORDER_REPLICATE`).
    Replicate,
    /// Mirrored without repeating the edge (`cb|abcd|cb`, OpenCV's `BORDER_REFLECT_101`,
    /// numpy's and PyTorch's `reflect`): a face zoomed out keeps plausible texture around it.
    #[default]
    Reflect,
}

/// The random augmentation beyond the flip (the training TOML's `[augment]` table). The
/// defaults do nothing, so a config without the table trains as before: flip only.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Augment {
    /// Range of the cropped area as a fraction of the image, `[min, max]`, uniform (as
    /// torchvision's `RandomResizedCrop`; `[1, 1]` is off, above 1 zooms out).
    pub scale: [f64; 2],
    /// Range of the crop's width/height ratio, `[min, max]`, log-uniform (`[1, 1]` is off).
    pub aspect: [f64; 2],
    /// Largest shift of the crop's centre, as a fraction of the side, in each direction.
    pub translate: f64,
    /// Largest rotation in degrees, uniform in `[-rotate, rotate]`.
    pub rotate: f64,
    /// How the warp fills pixels from outside the image.
    pub border: Border,
    /// Brightness factor uniform in `[max(0, 1 - b), 1 + b]` (torchvision's `ColorJitter`).
    pub brightness: f64,
    /// Contrast factor uniform in `[max(0, 1 - c), 1 + c]`.
    pub contrast: f64,
    /// Saturation factor uniform in `[max(0, 1 - s), 1 + s]`.
    pub saturation: f64,
    /// Probability of turning the image gray (three equal channels).
    pub grayscale: f64,
    /// Probability of a Gaussian blur.
    pub blur: f64,
    /// Range of the blur's sigma in pixels, `[min, max]`, uniform.
    pub blur_sigma: [f64; 2],
}

impl Default for Augment {
    fn default() -> Self {
        Augment {
            scale: [1.0, 1.0],
            aspect: [1.0, 1.0],
            translate: 0.0,
            rotate: 0.0,
            border: Border::default(),
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.0,
            grayscale: 0.0,
            blur: 0.0,
            blur_sigma: [0.1, 2.0],
        }
    }
}

/// `v` rounded to nearest, ties to even, as a byte (clamped to 0..=255; NaN gives 0).
/// `round_ties_even` is a libm call on x86-64 without SSE4.1 and dominated the warp and the
/// blur; adding and removing 2^52 rounds the same way in the FPU's default mode for
/// 0 <= v < 2^52.
#[inline]
pub(crate) fn round_u8(v: f64) -> u8 {
    const MAGIC: f64 = 4_503_599_627_370_496.0; // 2^52
    ((v.clamp(0.0, 255.0) + MAGIC) - MAGIC) as u8
}

/// Bounds that keep a warp a face (and the blur kernel small).
const MAX_SCALE: f64 = 4.0;
const MAX_ASPECT: f64 = 4.0;
const MAX_SIGMA: f64 = 10.0;

impl Augment {
    /// Whether the geometry is left alone (no warp; the flip may still apply).
    pub fn is_geometric_identity(&self) -> bool {
        self.scale == [1.0, 1.0] && self.aspect == [1.0, 1.0] && self.translate == 0.0 && self.rotate == 0.0
    }

    /// Checks the ranges; the error names the key (as in the TOML table) and why.
    pub fn validate(&self) -> std::result::Result<(), (&'static str, String)> {
        let range = |key: &'static str, [lo, hi]: [f64; 2], min_excl: f64, max: f64| {
            if lo.is_finite() && hi.is_finite() && lo > min_excl && lo <= hi && hi <= max {
                Ok(())
            } else {
                Err((key, format!("must be [min, max] with {min_excl} < min <= max <= {max}, got [{lo}, {hi}]")))
            }
        };
        let within = |key: &'static str, v: f64, max: f64| {
            if v.is_finite() && (0.0..=max).contains(&v) {
                Ok(())
            } else {
                Err((key, format!("must be in [0, {max}], got {v}")))
            }
        };
        range("scale", self.scale, 0.0, MAX_SCALE)?;
        range("aspect", self.aspect, 1.0 / MAX_ASPECT - f64::EPSILON, MAX_ASPECT)?;
        within("translate", self.translate, 0.5)?;
        within("rotate", self.rotate, 180.0)?;
        within("brightness", self.brightness, 1.0)?;
        within("contrast", self.contrast, 1.0)?;
        within("saturation", self.saturation, 1.0)?;
        within("grayscale", self.grayscale, 1.0)?;
        within("blur", self.blur, 1.0)?;
        range("blur_sigma", self.blur_sigma, 0.0, MAX_SIGMA)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_rounding_is_ties_to_even() {
        for v in [0.0, 0.5, 1.5, 2.5, 2.4999, 2.5001, 254.5, 255.7, -3.0, 1e300, f64::NAN] {
            let want = v.round_ties_even().clamp(0.0, 255.0);
            let want = if v.is_nan() { 0 } else { want as u8 };
            assert_eq!(round_u8(v), want, "{v}");
        }
    }

    #[test]
    fn default_is_valid_and_changes_nothing() {
        let a = Augment::default();
        assert!(a.validate().is_ok());
        assert!(a.is_geometric_identity());
    }

    #[test]
    fn ranges_are_checked_by_key() {
        let bad = |a: Augment| a.validate().unwrap_err().0;
        let d = Augment::default();
        assert_eq!(bad(Augment { scale: [0.9, 0.8], ..d }), "scale");
        assert_eq!(bad(Augment { scale: [0.0, 1.0], ..d }), "scale");
        assert_eq!(bad(Augment { aspect: [0.1, 1.0], ..d }), "aspect");
        assert_eq!(bad(Augment { translate: 0.6, ..d }), "translate");
        assert_eq!(bad(Augment { rotate: f64::NAN, ..d }), "rotate");
        assert_eq!(bad(Augment { brightness: -0.1, ..d }), "brightness");
        assert_eq!(bad(Augment { grayscale: 1.5, ..d }), "grayscale");
        assert_eq!(bad(Augment { blur_sigma: [0.0, 1.0], ..d }), "blur_sigma");
        assert!(Augment { aspect: [0.25, 4.0], scale: [0.5, 4.0], ..d }.validate().is_ok());
    }
}
