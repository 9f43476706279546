//! From a photo to the face a recognition model reads: detect every face (on a downscaled copy
//! when the photo is very large), choose one, and cut it aligned.

use image::imageops::FilterType;
use image::RgbImage;

use crate::mtcnn::{Face, Mtcnn};
use crate::{norm_crop, Result};

/// Photos whose longer side exceeds this are detected on a copy scaled down to it; the boxes
/// and landmarks are scaled back and the face is cut from the original. MTCNN's cost grows
/// with the pixel count while faces in such photos are large; 1280 keeps a 20-pixel minimum
/// face at 1.6% of the longer side.
pub const DEFAULT_MAX_DETECT_SIDE: u32 = 1280;

/// A detector with the rules that turn a photo into one aligned face.
pub struct FaceFinder {
    mtcnn: Mtcnn,
    max_side: u32,
}

/// The faces of one photo, and the one chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Every face, highest score first, in the photo's pixels.
    pub faces: Vec<Face>,
    /// Index into `faces` of the face used.
    pub chosen: usize,
    /// The aligned crop of the chosen face.
    pub crop: RgbImage,
}

/// Which face of a photo to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The largest box: the main subject of an everyday photo.
    Largest,
    /// The largest box with a penalty for its distance from the photo's centre (box area minus
    /// twice the squared offset of its centre, davidsandberg/facenet's
    /// `align_dataset_mtcnn.py` rule): the subject of a dataset photo cropped around one person,
    /// as LFW's, over a larger face cut by the frame.
    Centered,
    /// The N-th face (1-based, highest score first) when the photo has several; a photo with a
    /// single face uses it, so one number serves a portrait next to a group photo.
    Number(usize),
}

/// Why no face came out of a photo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoFace {
    /// The detector found none.
    #[error("no face found (MTCNN, faces of 20 pixels and more)")]
    NoneFound,
    /// `--face N` named a face the photo does not have.
    #[error("face {wanted} asked for, but only {found} found")]
    NotThatMany {
        /// The 1-based face number asked for.
        wanted: usize,
        /// How many faces were found.
        found: usize,
    },
}

impl FaceFinder {
    /// A finder with the default downscaling threshold.
    pub fn new(mtcnn: Mtcnn) -> FaceFinder {
        FaceFinder { mtcnn, max_side: DEFAULT_MAX_DETECT_SIDE }
    }

    /// Sets the longest side detection runs on (at least 48, O-Net's input).
    pub fn with_max_side(mut self, max_side: u32) -> FaceFinder {
        self.max_side = max_side.max(48);
        self
    }

    /// Every face in `photo`, highest score first, in `photo`'s pixels.
    pub fn detect(&self, photo: &RgbImage) -> Result<Vec<Face>> {
        let longest = photo.width().max(photo.height());
        if longest <= self.max_side {
            return self.mtcnn.detect(photo);
        }
        let factor = self.max_side as f64 / longest as f64;
        let w = ((photo.width() as f64 * factor).round() as u32).max(1);
        let h = ((photo.height() as f64 * factor).round() as u32).max(1);
        let small = image::imageops::resize(photo, w, h, FilterType::Triangle);
        let back = photo.width() as f32 / w as f32;
        Ok(self.mtcnn.detect(&small)?.into_iter().map(|f| f.scaled(back)).collect())
    }

    /// Detects, chooses a face by `choice` and aligns it to `size x size`. `Ok(Err(_))` says
    /// why there is no face, which is the photo's fault, not an error of the tool.
    pub fn find(&self, photo: &RgbImage, choice: Choice, size: u32) -> Result<std::result::Result<Found, NoFace>> {
        let faces = self.detect(photo)?;
        if faces.is_empty() {
            return Ok(Err(NoFace::NoneFound));
        }
        let chosen = match choice {
            _ if faces.len() == 1 => 0,
            Choice::Number(n) if n == 0 || n > faces.len() => {
                return Ok(Err(NoFace::NotThatMany { wanted: n, found: faces.len() }))
            }
            Choice::Number(n) => n - 1,
            Choice::Largest => largest(&faces),
            Choice::Centered => centered(&faces, photo.width(), photo.height()),
        };
        Ok(Ok(Found { crop: aligned_crop(photo, &faces[chosen], size)?, faces, chosen }))
    }
}

/// The face aligned to `size x size`. Below 112 pixels the face is aligned at 112 and then
/// resized with a triangle filter: a bilinear warp straight to a small size would skip
/// pixels (aliasing), where the resize averages them, as the fixed-crop path does.
pub fn aligned_crop(photo: &RgbImage, face: &Face, size: u32) -> Result<RgbImage> {
    if size >= 112 {
        return norm_crop(photo, &face.landmarks, size);
    }
    let full = norm_crop(photo, &face.landmarks, 112)?;
    Ok(image::imageops::resize(&full, size.max(1), size.max(1), FilterType::Triangle))
}

/// The index of the face with the largest box (the first of equals).
pub fn largest(faces: &[Face]) -> usize {
    let mut best = 0;
    for (i, f) in faces.iter().enumerate() {
        if f.area() > faces[best].area() {
            best = i;
        }
    }
    best
}

/// The index of the face with the best `area - 2 * offset^2`, the offset being the distance
/// from the box's centre to the photo's (see [`Choice::Centered`]).
pub fn centered(faces: &[Face], width: u32, height: u32) -> usize {
    let (cx, cy) = (width as f32 / 2.0, height as f32 / 2.0);
    let rank = |f: &Face| {
        let (fx, fy) = ((f.bbox[0] + f.bbox[2]) / 2.0, (f.bbox[1] + f.bbox[3]) / 2.0);
        f.area() - 2.0 * ((fx - cx).powi(2) + (fy - cy).powi(2))
    };
    let mut best = 0;
    for (i, f) in faces.iter().enumerate() {
        if rank(f) > rank(&faces[best]) {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(bbox: [f32; 4], score: f32) -> Face {
        Face { bbox, score, landmarks: [[0.0; 2]; 5] }
    }

    #[test]
    fn the_largest_face_is_the_main_one() {
        let faces = [face([0., 0., 10., 10.], 0.99), face([0., 0., 30., 20.], 0.9), face([5., 5., 35., 25.], 0.8)];
        assert_eq!(largest(&faces), 1);
    }

    #[test]
    fn the_centred_rule_prefers_the_subject_over_a_larger_face_at_the_edge() {
        // A 250x250 frame: the subject (90 px box) in the middle, a 120 px face cut by the edge.
        let faces = [face([-40., 60., 80., 180.], 0.99), face([80., 80., 170., 170.], 0.98)];
        assert_eq!(largest(&faces), 0);
        assert_eq!(centered(&faces, 250, 250), 1);
    }
}
