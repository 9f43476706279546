//! What augmentation does to one image: the random choices of (seed, epoch, index) drawn once
//! into a [`Plan`], then applied to a copy of the cached pixels. Keeping the two apart lets
//! the loader skip the copy when the plan changes nothing, and lets tests and `preview` see
//! the choices.

use super::rng::{should_flip, Draws, Slot};
use super::{flip_horizontal, gaussian_blur, to_grayscale, warp_affine, Affine, Augment, Border, ColorOp};

/// The augmentation of one image, fully decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Mirror left-right (folded into `warp` when there is one).
    pub flip: bool,
    /// The output-to-source map, when the geometry changes beyond the flip.
    pub warp: Option<Affine>,
    /// How the warp fills pixels from outside the image.
    pub border: Border,
    /// Colour jitter operations and their factors, in the order applied.
    pub color: Vec<(ColorOp, f64)>,
    /// Turn the image gray.
    pub grayscale: bool,
    /// Gaussian blur with this sigma.
    pub blur_sigma: Option<f64>,
}

impl Augment {
    /// The plan of image `index` in `epoch` under `seed` for `width x height` images; `flip`
    /// enables the random horizontal flip (the `[data] flip` switch).
    pub fn plan(&self, flip: bool, seed: u64, epoch: u64, index: u64, width: usize, height: usize) -> Plan {
        let flip = flip && should_flip(seed, epoch, index);
        let d = Draws::new(seed, epoch, index);
        let warp = (!self.is_geometric_identity()).then(|| {
            let area = d.between(Slot::Scale, self.scale[0], self.scale[1]);
            let (lo, hi) = (self.aspect[0].ln(), self.aspect[1].ln());
            let ratio = d.between(Slot::Aspect, lo, hi).exp();
            let t = self.translate;
            let shift = [d.between(Slot::ShiftX, -t, t) * width as f64, d.between(Slot::ShiftY, -t, t) * height as f64];
            let degrees = d.between(Slot::Rotate, -self.rotate, self.rotate);
            Affine::jitter(width, height, area, ratio, shift, degrees, flip)
        });
        Plan {
            flip,
            warp,
            border: self.border,
            color: self.color_ops(&d),
            grayscale: self.grayscale > 0.0 && d.uniform(Slot::Grayscale) < self.grayscale,
            blur_sigma: (self.blur > 0.0 && d.uniform(Slot::Blur) < self.blur)
                .then(|| d.between(Slot::BlurSigma, self.blur_sigma[0], self.blur_sigma[1])),
        }
    }

    /// The enabled jitter operations with their factors, in a random order of the six
    /// permutations (torchvision shuffles its four, hue included, the same way).
    fn color_ops(&self, d: &Draws) -> Vec<(ColorOp, f64)> {
        let factor = |slot, j: f64| d.between(slot, (1.0 - j).max(0.0), 1.0 + j);
        let all = [
            (ColorOp::Brightness, self.brightness, Slot::Brightness),
            (ColorOp::Contrast, self.contrast, Slot::Contrast),
            (ColorOp::Saturation, self.saturation, Slot::Saturation),
        ];
        const ORDERS: [[usize; 3]; 6] = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
        let order = ORDERS[((d.uniform(Slot::ColorOrder) * 6.0) as usize).min(5)];
        order.iter().map(|&k| all[k]).filter(|&(_, j, _)| j > 0.0).map(|(op, j, slot)| (op, factor(slot, j))).collect()
    }
}

impl Plan {
    /// Whether the plan leaves the pixels as they are.
    pub fn is_identity(&self) -> bool {
        !self.flip && self.warp.is_none() && self.color.is_empty() && !self.grayscale && self.blur_sigma.is_none()
    }

    /// The augmented copy of the `width x height` RGB (HWC u8) image `src`.
    pub fn apply(&self, src: &[u8], width: usize, height: usize) -> Vec<u8> {
        let mut px = match &self.warp {
            Some(m) => {
                let mut out = vec![0; src.len()];
                warp_affine(src, width, height, m, self.border, &mut out);
                out
            }
            None => {
                let mut out = src.to_vec();
                if self.flip {
                    flip_horizontal(&mut out, width, 3);
                }
                out
            }
        };
        for &(op, factor) in &self.color {
            op.apply(&mut px, factor);
        }
        if self.grayscale {
            to_grayscale(&mut px);
        }
        if let Some(sigma) = self.blur_sigma {
            gaussian_blur(&mut px, width, height, sigma);
        }
        px
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Augment {
        Augment {
            scale: [0.8, 1.0],
            aspect: [0.9, 1.1],
            translate: 0.05,
            rotate: 10.0,
            border: Border::Reflect,
            brightness: 0.2,
            contrast: 0.2,
            saturation: 0.2,
            grayscale: 0.2,
            blur: 0.3,
            blur_sigma: [0.5, 1.5],
        }
    }

    #[test]
    fn the_default_plan_is_the_flip_coin_alone() {
        for i in 0..50 {
            let p = Augment::default().plan(true, 3, 1, i, 8, 8);
            assert_eq!(p.flip, should_flip(3, 1, i));
            assert!(p.warp.is_none() && p.color.is_empty() && !p.grayscale && p.blur_sigma.is_none());
            assert!(Augment::default().plan(false, 3, 1, i, 8, 8).is_identity());
        }
    }

    #[test]
    fn choices_follow_the_probabilities_and_ranges() {
        let a = full();
        let plans: Vec<Plan> = (0..2000).map(|i| a.plan(true, 9, 0, i, 16, 16)).collect();
        let gray = plans.iter().filter(|p| p.grayscale).count();
        let blur = plans.iter().filter(|p| p.blur_sigma.is_some()).count();
        assert!((330..470).contains(&gray), "{gray}");
        assert!((520..680).contains(&blur), "{blur}");
        assert!(plans.iter().flat_map(|p| p.blur_sigma).all(|s| (0.5..=1.5).contains(&s)));
        assert!(plans.iter().flat_map(|p| &p.color).all(|&(_, f)| (0.8..=1.2).contains(&f)));
        assert!(plans.iter().all(|p| p.color.len() == 3 && p.warp.is_some()));
        let first_ops: std::collections::HashSet<_> = plans.iter().map(|p| format!("{:?}", p.color[0].0)).collect();
        assert_eq!(first_ops.len(), 3, "the order is shuffled");
    }

    #[test]
    fn enabling_a_step_leaves_the_others_draws_alone() {
        let only_blur = Augment { blur: 1.0, ..Augment::default() };
        let with_rotation = Augment { rotate: 5.0, ..only_blur };
        for i in 0..20 {
            let (a, b) = (only_blur.plan(true, 1, 2, i, 8, 8), with_rotation.plan(true, 1, 2, i, 8, 8));
            assert_eq!((a.flip, a.blur_sigma), (b.flip, b.blur_sigma));
        }
    }
}
