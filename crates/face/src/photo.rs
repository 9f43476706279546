//! Reading a photo as a person sees it: decoded from JPEG or PNG whatever its pixel format
//! (grayscale, CMYK JPEG, alpha, 16 bits per channel become 8-bit RGB), turned upright by its
//! EXIF orientation, and refused with a message naming the file when it cannot be read.
//!
//! JPEGs are decoded by libjpeg-turbo (through `mozjpeg`, with libjpeg's defaults: accurate
//! integer IDCT, smooth chroma upsampling), the decoder behind Pillow and OpenCV, so the pixels
//! are the ones a PyTorch pipeline sees, to the bit. That matters more than it seems: MTCNN's
//! landmarks move by half a pixel between two JPEG decoders that differ by 0.2 levels on
//! average, and the aligned crop with them. CMYK JPEGs, which libjpeg does not turn into RGB,
//! and PNGs go through the `image` crate.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{ImageDecoder, ImageReader, RgbImage};

/// What can go wrong reading a photo; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    /// The file cannot be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The photo.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The bytes are not a photo this build decodes, or are damaged.
    #[error("{}: {message}", path.display())]
    Decode {
        /// The photo.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl PhotoError {
    /// What is wrong, without the file name (for lists that name the file already).
    pub fn reason(&self) -> String {
        match self {
            PhotoError::Io { source, .. } => source.to_string(),
            PhotoError::Decode { message, .. } => message.clone(),
        }
    }
}

/// The largest photo decoded, in pixels (a 100-megapixel frame is 300 MB as RGB); larger files
/// are refused before their pixels are allocated.
pub const MAX_PIXELS: u64 = 100_000_000;

/// Reads the photo at `path` upright, as 8-bit RGB.
pub fn load_photo(path: &Path) -> Result<RgbImage, PhotoError> {
    let bytes = std::fs::read(path).map_err(|source| PhotoError::Io { path: path.into(), source })?;
    decode_photo(&bytes, path)
}

/// Decodes an encoded photo (`path` names it in errors) upright, as 8-bit RGB.
pub fn decode_photo(bytes: &[u8], path: &Path) -> Result<RgbImage, PhotoError> {
    let err = |message: String| PhotoError::Decode { path: path.into(), message };
    if bytes.is_empty() {
        return Err(err("empty file".into()));
    }
    if looks_truncated_jpeg(bytes) {
        return Err(err("truncated JPEG (no end-of-image marker)".into()));
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| err(e.to_string()))?;
    let format = reader.format().ok_or_else(|| err("not a JPEG or PNG image".into()))?;
    let mut decoder = reader.into_decoder().map_err(|e| err(e.to_string()))?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(err(format!("empty image ({w}x{h})")));
    }
    if w as u64 * h as u64 > MAX_PIXELS {
        return Err(err(format!("{w}x{h} pixels is more than the {MAX_PIXELS} this tool decodes")));
    }
    // A missing or unreadable EXIF block means "as stored", like every photo viewer does.
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let libjpeg = match format {
        image::ImageFormat::Jpeg => decode_jpeg_libjpeg(bytes).map_err(err)?,
        _ => None,
    };
    let mut image = match libjpeg {
        Some(rgb) => image::DynamicImage::ImageRgb8(rgb),
        None => image::DynamicImage::from_decoder(decoder).map_err(|e| err(e.to_string()))?,
    };
    image.apply_orientation(orientation);
    Ok(image.into_rgb8())
}

/// Decodes a JPEG with libjpeg-turbo; `None` for CMYK/YCCK files, which it cannot convert to
/// RGB. libjpeg reports a fatal error by unwinding (`mozjpeg` resumes the unwind without the
/// panic hook, so nothing is printed); it is caught here and becomes the error message.
fn decode_jpeg_libjpeg(bytes: &[u8]) -> Result<Option<RgbImage>, String> {
    let result = std::panic::catch_unwind(|| -> std::io::Result<Option<RgbImage>> {
        let d = mozjpeg::Decompress::new_mem(bytes)?;
        if matches!(d.color_space(), mozjpeg::ColorSpace::JCS_CMYK | mozjpeg::ColorSpace::JCS_YCCK) {
            return Ok(None);
        }
        let mut img = d.rgb()?;
        let (w, h) = (img.width() as u32, img.height() as u32);
        let pixels: Vec<[u8; 3]> = img.read_scanlines()?;
        img.finish()?;
        Ok(RgbImage::from_raw(w, h, pixels.concat()))
    });
    match result {
        Ok(Ok(Some(rgb))) => Ok(Some(rgb)),
        Ok(Ok(None)) => Ok(None),
        Ok(Err(e)) => Err(format!("damaged JPEG: {e}")),
        Err(payload) => {
            let why = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "libjpeg error".into());
            Err(format!("damaged JPEG: {why}"))
        }
    }
}

/// A JPEG must end with the EOI marker; the decoder silently grey-fills truncated files, and
/// a half-grey face is worse than an error. Some encoders pad after EOI, so look near the end.
pub fn looks_truncated_jpeg(bytes: &[u8]) -> bool {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let tail = &bytes[bytes.len().saturating_sub(64)..];
    !tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(image: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn gray_alpha_and_16_bit_pngs_become_rgb() {
        let gray = image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(3, 2, image::Luma([77])));
        let rgb = decode_photo(&encode(gray, image::ImageFormat::Png), Path::new("g.png")).unwrap();
        assert_eq!(rgb.get_pixel(2, 1).0, [77, 77, 77]);
        let rgba = image::RgbaImage::from_pixel(2, 2, image::Rgba([10, 20, 30, 0]));
        let rgb = decode_photo(&encode(rgba.into(), image::ImageFormat::Png), Path::new("a.png")).unwrap();
        assert_eq!(rgb.get_pixel(0, 0).0, [10, 20, 30]);
        let deep = image::ImageBuffer::<image::Rgb<u16>, _>::from_pixel(2, 2, image::Rgb([65535, 0, 32896]));
        let rgb = decode_photo(&encode(deep.into(), image::ImageFormat::Png), Path::new("d.png")).unwrap();
        assert_eq!(rgb.get_pixel(1, 1).0, [255, 0, 128]);
    }

    #[test]
    fn jpegs_decode_upright_in_any_colour_model() {
        let rgb = RgbImage::from_fn(16, 8, |x, y| image::Rgb([(x * 15) as u8, (y * 30) as u8, 128]));
        let jpeg = encode(rgb.clone().into(), image::ImageFormat::Jpeg);
        let back = decode_photo(&jpeg, Path::new("c.jpg")).unwrap();
        assert_eq!(back.dimensions(), (16, 8));
        let gap: u32 = back.as_raw().iter().zip(rgb.as_raw()).map(|(a, b)| a.abs_diff(*b) as u32).sum();
        assert!(gap / (16 * 8 * 3) < 8, "JPEG round trip off by {gap}");
        let gray = image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(8, 8, image::Luma([200])));
        let back = decode_photo(&encode(gray, image::ImageFormat::Jpeg), Path::new("g.jpg")).unwrap();
        assert!(back.get_pixel(3, 3).0.iter().all(|v| v.abs_diff(200) <= 1));
    }

    #[test]
    fn bad_bytes_name_the_file() {
        for (bytes, want) in [
            (&b""[..], "empty file"),
            (&b"hello, not a photo"[..], "not a JPEG or PNG"),
            (&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0][..], "truncated JPEG"),
            (&[0xFF, 0xD8, 0xFF, 0xDB, 0, 3, 0xFF, 0xD9][..], "x.jpg"),
        ] {
            let e = decode_photo(bytes, Path::new("dir/x.jpg")).unwrap_err().to_string();
            assert!(e.starts_with("dir/x.jpg: ") && e.contains(want), "{e}");
        }
        let e = load_photo(Path::new("/nonexistent/y.png")).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/y.png"), "{e}");
    }
}
