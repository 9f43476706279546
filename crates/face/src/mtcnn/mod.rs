//! MTCNN face detection (Zhang et al., "Joint Face Detection and Alignment using Multi-task
//! Cascaded Convolutional Networks", IEEE SPL 2016), as facenet-pytorch runs it: an image
//! pyramid through P-Net, then R-Net on 24x24 and O-Net on 48x48 crops of the surviving boxes,
//! with non-maximum suppression and box regression between the stages. O-Net also gives five
//! landmarks per face (eyes, nose tip, mouth corners), which [`crate::align`] maps onto the
//! ArcFace template.
//!
//! The weights are facenet-pytorch's `pnet.pt`, `rnet.pt` and `onet.pt`, read as they are
//! published. Against facenet-pytorch 2.6 on LFW photos (tests/mtcnn.rs) the boxes and
//! landmarks agree to a small fraction of a pixel.

mod boxes;
mod direct;
mod layers;
mod nets;
mod planar;
mod torch_file;

use std::path::Path;

use candle::Device;
use image::RgbImage;

use crate::{Error, Result};
use boxes::{Candidate, Overlap};
use planar::AreaSums;
pub use nets::{ONet, PNet, RNet};
pub use planar::{Planar, Region};

/// The file names of the three networks in a weights folder.
pub const WEIGHT_FILES: [&str; 3] = ["pnet.pt", "rnet.pt", "onet.pt"];

/// Detection settings; the defaults are facenet-pytorch's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectOptions {
    /// The smallest face searched for, in pixels of the image detected on (20).
    pub min_face_size: f64,
    /// Face-probability thresholds of P-Net, R-Net and O-Net (0.6, 0.7, 0.7).
    pub thresholds: [f32; 3],
    /// Scale step of the image pyramid (0.709, so that the area halves every two levels).
    pub factor: f64,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions { min_face_size: 20.0, thresholds: [0.6, 0.7, 0.7], factor: 0.709 }
    }
}

impl DetectOptions {
    /// Checks that the settings can run: a positive face size, thresholds in [0, 1], a
    /// factor strictly between 0 and 1 (otherwise the pyramid never ends).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidOptions(m));
        if !(self.min_face_size.is_finite() && self.min_face_size > 0.0) {
            return bad(format!("minimum face size {} must be positive", self.min_face_size));
        }
        if let Some(t) = self.thresholds.iter().find(|t| !(0.0..=1.0).contains(*t)) {
            return bad(format!("threshold {t} must be within 0..1"));
        }
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return bad(format!("pyramid factor {} must be strictly between 0 and 1", self.factor));
        }
        Ok(())
    }

    /// The pyramid's scales for an image whose shorter side is `min_side`: the first maps the
    /// minimum face size onto P-Net's 12-pixel window, each next one is `factor` times
    /// smaller, down to where the shorter side would drop below 12 pixels.
    pub fn scales(&self, min_side: usize) -> Vec<f64> {
        let mut scale = 12.0 / self.min_face_size;
        let mut side = min_side as f64 * scale;
        let mut out = Vec::new();
        while side >= 12.0 {
            out.push(scale);
            scale *= self.factor;
            side *= self.factor;
        }
        out
    }
}

/// One detected face, in pixels of the image it was found in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Face {
    /// `[x1, y1, x2, y2]`.
    pub bbox: [f32; 4],
    /// O-Net's face probability.
    pub score: f32,
    /// `(x, y)` of the left eye, right eye, nose tip, left and right mouth corner (left and
    /// right as seen in the photo).
    pub landmarks: [[f32; 2]; 5],
}

impl Face {
    /// The box's area, which ranks faces when the largest is wanted.
    pub fn area(&self) -> f32 {
        (self.bbox[2] - self.bbox[0]).max(0.0) * (self.bbox[3] - self.bbox[1]).max(0.0)
    }

    /// The same face in an image `factor` times larger.
    pub fn scaled(&self, factor: f32) -> Face {
        let mut f = *self;
        f.bbox.iter_mut().for_each(|v| *v *= factor);
        f.landmarks.iter_mut().flatten().for_each(|v| *v *= factor);
        f
    }
}

/// The three networks, ready to detect.
pub struct Mtcnn {
    pnet: PNet,
    rnet: RNet,
    onet: ONet,
    options: DetectOptions,
}

impl Mtcnn {
    /// Loads `pnet.pt`, `rnet.pt` and `onet.pt` from `dir` (as `cargo xtask download mtcnn`
    /// leaves them in `data/mtcnn`).
    pub fn load(dir: &Path, device: &Device) -> Result<Mtcnn> {
        let [p, r, o] = WEIGHT_FILES.map(|f| dir.join(f));
        Ok(Mtcnn {
            pnet: PNet::load(&p, device)?,
            rnet: RNet::load(&r, device)?,
            onet: ONet::load(&o, device)?,
            options: DetectOptions::default(),
        })
    }

    /// Replaces the detection settings.
    pub fn with_options(mut self, options: DetectOptions) -> Result<Mtcnn> {
        options.validate()?;
        self.options = options;
        Ok(self)
    }

    /// The detection settings in use.
    pub fn options(&self) -> &DetectOptions {
        &self.options
    }

    /// The faces in `image`, highest score first (none is not an error).
    pub fn detect(&self, image: &RgbImage) -> Result<Vec<Face>> {
        let img = AreaSums::from_rgb(image);
        let proposals = self.propose(&img)?;
        let refined = self.refine(&img, proposals)?;
        self.output(&img, refined)
    }

    /// Stage 1: P-Net over the pyramid; candidates suppressed per level, then across levels,
    /// regressed and squared.
    fn propose(&self, img: &AreaSums) -> Result<Vec<Candidate>> {
        let scales = self.options.scales(img.height.min(img.width));
        let mut all = Vec::new();
        for (scale, map) in scales.iter().zip(self.pnet.pyramid(img, &scales)?) {
            let level = boxes::generate(&map.prob, map.reg_planes(), map.width, *scale as f32, self.options.thresholds[0]);
            let keep = boxes::nms(&level, 0.5, Overlap::Union);
            all.extend(boxes::select(&level, &keep));
        }
        let mut out = boxes::select(&all, &boxes::nms(&all, 0.7, Overlap::Union));
        for b in &mut out {
            boxes::regress_proposal(b);
            boxes::square(b);
        }
        Ok(out)
    }

    /// The crop rectangles of `candidates` in the image, and the candidates that had pixels in
    /// it (in the same order).
    fn regions(img: &AreaSums, candidates: Vec<Candidate>) -> (Vec<Region>, Vec<Candidate>) {
        candidates
            .into_iter()
            .filter_map(|c| {
                let (x0, y0, x1, y1) = boxes::crop_rect(&c, img.width, img.height)?;
                Some((Region { x0, y0, x1, y1 }, c))
            })
            .unzip()
    }

    /// Stage 2: R-Net re-scores and regresses each proposal.
    fn refine(&self, img: &AreaSums, proposals: Vec<Candidate>) -> Result<Vec<Candidate>> {
        let (regions, kept) = Self::regions(img, proposals);
        if kept.is_empty() {
            return Ok(kept);
        }
        let scored = self.rnet.score(img, &regions)?;
        let passed: Vec<Candidate> = kept
            .into_iter()
            .zip(scored)
            .filter(|(_, (p, _))| *p > self.options.thresholds[1])
            .map(|(c, (p, reg))| Candidate { rect: c.rect, score: p, reg })
            .collect();
        let mut out = boxes::select(&passed, &boxes::nms(&passed, 0.7, Overlap::Union));
        for b in &mut out {
            boxes::regress(b);
            boxes::square(b);
        }
        Ok(out)
    }

    /// Stage 3: O-Net's final score, regression and landmarks; overlapping faces are merged
    /// by the overlap over the smaller box.
    fn output(&self, img: &AreaSums, refined: Vec<Candidate>) -> Result<Vec<Face>> {
        let (regions, kept) = Self::regions(img, refined);
        if kept.is_empty() {
            return Ok(Vec::new());
        }
        let scored = self.onet.score(img, &regions)?;
        let mut passed = Vec::new();
        let mut landmarks = Vec::new();
        for (c, (prob, reg, m)) in kept.into_iter().zip(scored) {
            if prob <= self.options.thresholds[2] {
                continue;
            }
            // Landmarks are relative to the box before regression, 1-based like the crop.
            let w = c.rect[2] - c.rect[0] + 1.0;
            let h = c.rect[3] - c.rect[1] + 1.0;
            landmarks.push(std::array::from_fn(|k| [w * m[k] + c.rect[0] - 1.0, h * m[5 + k] + c.rect[1] - 1.0]));
            let mut b = Candidate { rect: c.rect, score: prob, reg };
            boxes::regress(&mut b);
            passed.push(b);
        }
        let keep = boxes::nms(&passed, 0.7, Overlap::Min);
        Ok(keep
            .into_iter()
            .map(|i| Face { bbox: passed[i].rect, score: passed[i].score, landmarks: landmarks[i] })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyramid_matches_facenet_pytorch() {
        // facenet-pytorch on a 250x250 image: 12/20 = 0.6, then x0.709 while 250 * s >= 12
        // (its loop gives 8 scales, the last 0.6 * 0.709^7).
        let s = DetectOptions::default().scales(250);
        assert_eq!(s.len(), 8);
        assert_eq!(s[0], 0.6);
        assert!((s[7] - 0.6 * 0.709f64.powi(7)).abs() < 1e-12);
        assert!(DetectOptions::default().scales(19).is_empty());
    }

    #[test]
    fn options_that_cannot_run_are_refused() {
        let o = DetectOptions { factor: 1.0, ..Default::default() };
        assert!(o.validate().unwrap_err().to_string().contains("factor"));
        let o = DetectOptions { min_face_size: 0.0, ..Default::default() };
        assert!(o.validate().is_err());
        let o = DetectOptions { thresholds: [0.6, 1.5, 0.7], ..Default::default() };
        assert!(o.validate().is_err());
    }
}
