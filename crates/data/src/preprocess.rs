//! Face preprocessing: decode a JPEG/PNG (upright, libjpeg-turbo as Pillow; see
//! `arcface_face::photo`), cut the face to `size x size` RGB (u8, HWC), then normalize to
//! `(x/255 - 0.5)/0.5` in NCHW f32 as InsightFace's `arcface_torch` does.
//!
//! Two ways to cut the face ([`Align`]): a fixed box resized (`center`; LFW deep-funneled faces
//! are centred in 250x250, and the default box was chosen by looking at a grid of crops, see
//! `preview_grid`, so that it spans the eyebrows to the chin like InsightFace's aligned faces),
//! or MTCNN detection and 5-point alignment to the ArcFace template (`mtcnn`), as InsightFace
//! prepares its training sets. A photo in which MTCNN finds no face falls back to the fixed box,
//! so a training set keeps every image.

use std::path::Path;

use candle::{Device, Tensor};
use image::imageops::FilterType;
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// A rectangle in source-image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CropBox {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl CropBox {
    /// The crop box for LFW deep-funneled 250x250 images. Chosen by eye from preview grids of
    /// 64 dev-train faces (`cargo run -p arcface-data --example preview -- data/lfw grid.png x y w h`):
    /// (70, 70, 110) cut some chins, (62, 62, 126) left too much hair and background;
    /// (68, 74, 114) spans eyebrows to chin with the eyes near 45% and the mouth near 80% of
    /// the height, close to InsightFace's aligned 112x112 template.
    pub const LFW: CropBox = CropBox { x: 68, y: 74, width: 114, height: 114 };
}

/// How the face is cut out of a photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Align {
    /// The fixed crop box, resized.
    #[default]
    Center,
    /// MTCNN's landmarks mapped onto the ArcFace template (of the face nearest the centre,
    /// `arcface_face::Choice::Centered`: dataset photos are cropped around their subject; the
    /// fixed box when none is found). Needs [`crate::faces::load_detector`] first.
    Mtcnn,
}

impl std::fmt::Display for Align {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Align::Center => "center",
            Align::Mtcnn => "mtcnn",
        })
    }
}

/// Crop-then-resize settings shared by training, evaluation and the cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Preprocess {
    /// Region of the source image to keep (`center`, and the fallback of `mtcnn`).
    pub crop: CropBox,
    /// Output side length (112 for IResNets).
    pub size: usize,
    /// How the face is cut; runs saved before alignment existed read as `center`.
    #[serde(default)]
    pub align: Align,
}

impl Default for Preprocess {
    fn default() -> Self {
        Preprocess { crop: CropBox::LFW, size: 112, align: Align::Center }
    }
}

impl Preprocess {
    /// Largest output side accepted: the backbone's own input limit
    /// (`arcface_backbone::MAX_INPUT_SIZE`); a larger size is a typo that would abort on
    /// allocation (one image of side 10^5 is 30 GB).
    pub const MAX_SIZE: usize = 1024;

    /// Checks the settings (non-empty crop, 0 < size <= [`Preprocess::MAX_SIZE`]).
    pub fn validate(&self) -> Result<()> {
        if self.size == 0 || self.crop.width == 0 || self.crop.height == 0 {
            return Err(DataError::Config(format!("empty crop or output size: {self:?}")));
        }
        if self.size > Self::MAX_SIZE {
            return Err(DataError::Config(format!(
                "output size must be at most {} pixels (the standard models take 112), got {}",
                Self::MAX_SIZE,
                self.size
            )));
        }
        Ok(())
    }

    /// Bytes per preprocessed image (`size * size * 3`).
    pub fn image_bytes(&self) -> usize {
        self.size * self.size * 3
    }

    /// Reads and preprocesses an image file into `size*size*3` RGB bytes (HWC).
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Vec<u8>> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        self.decode(&bytes, &path.display().to_string())
    }

    /// Decodes an encoded image (`origin` names it in errors) and preprocesses it.
    pub fn decode(&self, bytes: &[u8], origin: &str) -> Result<Vec<u8>> {
        let image = arcface_face::decode_photo(bytes, Path::new(origin)).map_err(|e| match e {
            arcface_face::PhotoError::Decode { message, .. } => DataError::Decode { origin: origin.to_string(), message },
            arcface_face::PhotoError::Io { source, .. } => DataError::io(origin, source),
        })?;
        match self.align {
            Align::Center => self.crop_resize(&image, origin),
            Align::Mtcnn => self.align_face(&image, origin),
        }
    }

    /// The largest face aligned by its landmarks, or the fixed crop when none is found.
    fn align_face(&self, image: &RgbImage, origin: &str) -> Result<Vec<u8>> {
        let finder = crate::faces::detector().ok_or_else(|| {
            DataError::Config("aligned preprocessing needs the MTCNN detector loaded first (faces::load_detector)".into())
        })?;
        let found = finder
            .find(image, arcface_face::Choice::Centered, self.size as u32)
            .map_err(|e| DataError::Decode { origin: origin.to_string(), message: e.to_string() })?;
        match found {
            Ok(found) => Ok(found.crop.into_raw()),
            Err(_) => self.crop_resize(image, origin),
        }
    }

    /// Crops and resizes an already decoded RGB image.
    pub fn crop_resize(&self, image: &RgbImage, origin: &str) -> Result<Vec<u8>> {
        self.validate()?;
        let c = self.crop;
        if c.x.saturating_add(c.width) > image.width() || c.y.saturating_add(c.height) > image.height() {
            return Err(DataError::Config(format!(
                "{origin}: crop {c:?} does not fit in a {}x{} image",
                image.width(),
                image.height()
            )));
        }
        let cropped = image::imageops::crop_imm(image, c.x, c.y, c.width, c.height).to_image();
        let s = self.size as u32;
        let out = if (c.width, c.height) == (s, s) {
            cropped
        } else {
            image::imageops::resize(&cropped, s, s, FilterType::Triangle)
        };
        Ok(out.into_raw())
    }
}

/// Writes one HWC u8 image as CHW f32 normalized to `(x/255 - 0.5)/0.5`, i.e. `x/127.5 - 1`.
pub fn hwc_to_chw_normalized(pixels: &[u8], out: &mut [f32]) {
    let plane = out.len() / 3;
    for (i, px) in pixels.chunks_exact(3).enumerate().take(plane) {
        for (c, &v) in px.iter().enumerate() {
            out[c * plane + i] = v as f32 / 127.5 - 1.0;
        }
    }
}

/// Converts `n` HWC RGB u8 images of `size x size` into an `n x 3 x size x size` f32 tensor
/// normalized to `(x/255 - 0.5)/0.5`.
pub fn images_to_tensor(pixels: &[u8], n: usize, size: usize, device: &Device) -> candle::Result<Tensor> {
    let per = size * size * 3;
    if pixels.len() != n * per {
        candle::bail!("images_to_tensor: {} bytes for {n} images of {size}x{size}x3 ({} expected)", pixels.len(), n * per);
    }
    let mut data = vec![0f32; n * per];
    for (src, dst) in pixels.chunks_exact(per).zip(data.chunks_exact_mut(per)) {
        hwc_to_chw_normalized(src, dst);
    }
    Tensor::from_vec(data, (n, 3, size, size), device)
}

/// Largest preview grid (2^28 pixels, 768 MB of RGB): a grid is for looking at, by eye.
const MAX_GRID_PIXELS: u64 = 1 << 28;

/// Saves a PNG grid of preprocessed images (`cols` per row, 2-pixel gaps) for checking a crop by eye.
pub fn preview_grid(paths: &[impl AsRef<Path>], preprocess: &Preprocess, cols: usize, out_png: impl AsRef<Path>) -> Result<()> {
    preprocess.validate()?;
    if paths.is_empty() || cols == 0 {
        return Err(DataError::Config("preview_grid needs at least one image and one column".into()));
    }
    let (s, gap) = (preprocess.size as u64, 2u64);
    let cols = cols.min(paths.len()) as u64;
    let rows = paths.len().div_ceil(cols as usize) as u64;
    let (width, height) = (cols * (s + gap) + gap, rows * (s + gap) + gap);
    // The image crate aborts the process when it cannot allocate the grid; refuse first.
    if width.saturating_mul(height) > MAX_GRID_PIXELS {
        return Err(DataError::Config(format!(
            "a grid of {} crops of {s} px, {cols} per row, is {width}x{height} pixels; at most {MAX_GRID_PIXELS} \
             (fewer crops, columns or a smaller size)",
            paths.len()
        )));
    }
    let (s, gap, cols) = (s as u32, gap as u32, cols as u32);
    let mut grid = RgbImage::from_pixel(width as u32, height as u32, image::Rgb([255, 255, 255]));
    for (i, path) in paths.iter().enumerate() {
        let pixels = preprocess.load(path)?;
        let tile = RgbImage::from_raw(s, s, pixels).ok_or_else(|| DataError::Config("bad tile size".into()))?;
        let (col, row) = (i as u32 % cols, i as u32 / cols);
        image::imageops::replace(&mut grid, &tile, (gap + col * (s + gap)) as i64, (gap + row * (s + gap)) as i64);
    }
    let out = out_png.as_ref();
    grid.save(out).map_err(|e| DataError::io(out, std::io::Error::other(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_and_layout() {
        // A 2x2 image whose pixel (row 0, col 1) is (255, 51, 0).
        let mut px = vec![0u8; 2 * 2 * 3];
        px[3] = 255;
        px[4] = 51;
        let t = images_to_tensor(&px, 1, 2, &Device::Cpu).unwrap();
        assert_eq!(t.dims(), &[1, 3, 2, 2]);
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        // Channel-major: R plane, G plane, B plane; 0 -> -1, 255 -> 1, 51 -> 51/127.5 - 1 = -0.6.
        assert_eq!(&v[0..4], &[-1.0, 1.0, -1.0, -1.0]);
        assert!((v[5] - (-0.6)).abs() < 1e-6);
        assert!(images_to_tensor(&px, 2, 2, &Device::Cpu).is_err());
    }

    #[test]
    fn crop_then_resize_shapes_and_bounds() {
        let img = RgbImage::from_fn(20, 10, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let p = Preprocess { crop: CropBox { x: 5, y: 2, width: 4, height: 4 }, size: 4, align: Align::Center };
        let out = p.crop_resize(&img, "t").unwrap();
        assert_eq!(out.len(), 48);
        // No resampling at equal size: the first pixel is the crop's corner.
        assert_eq!(&out[0..3], &[5, 2, 7]);
        let big = Preprocess { crop: CropBox { x: 15, y: 0, width: 6, height: 4 }, size: 4, align: Align::Center };
        assert!(big.crop_resize(&img, "t").unwrap_err().to_string().contains("does not fit"));
        let up = Preprocess { crop: CropBox { x: 0, y: 0, width: 4, height: 4 }, size: 8, align: Align::Center };
        assert_eq!(up.crop_resize(&img, "t").unwrap().len(), 8 * 8 * 3);
    }

    #[test]
    fn absurd_sizes_are_refused_before_any_allocation() {
        // Before: `arcface preview --size 100000` aborted ("memory allocation of 60004200072
        // bytes failed"); now the size and the grid are checked first.
        let huge = Preprocess { size: 100_000, ..Preprocess::default() };
        let e = huge.validate().unwrap_err().to_string();
        assert!(e.contains("at most 1024 pixels (the standard models take 112), got 100000"), "{e}");
        let dir = std::env::temp_dir();
        let e = preview_grid(&[dir.join("a.png")], &huge, 8, dir.join("grid.png")).unwrap_err().to_string();
        assert!(e.contains("at most 1024"), "{e}");
        let many: Vec<_> = (0..100_000).map(|i| dir.join(format!("{i}.png"))).collect();
        let big = Preprocess { size: 1024, ..Preprocess::default() };
        let e = preview_grid(&many, &big, 8, dir.join("grid.png")).unwrap_err().to_string();
        assert!(e.contains("pixels; at most 268435456"), "{e}");
    }

    #[test]
    fn jpeg_truncation_check() {
        assert!(arcface_face::photo::looks_truncated_jpeg(&[0xFF, 0xD8, 0xFF, 0xE0, 1, 2]));
        assert!(!arcface_face::photo::looks_truncated_jpeg(&[0xFF, 0xD8, 1, 2, 0xFF, 0xD9]));
        assert!(!arcface_face::photo::looks_truncated_jpeg(&[0xFF, 0xD8, 1, 0xFF, 0xD9, 0, 0]));
        assert!(!arcface_face::photo::looks_truncated_jpeg(b"\x89PNG"));
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let e = Preprocess::default().decode(b"not an image", "x.jpg").unwrap_err();
        assert!(matches!(e, DataError::Decode { .. }), "{e}");
        assert!(e.to_string().starts_with("x.jpg"));
    }
}
