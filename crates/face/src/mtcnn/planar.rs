//! The photo as MTCNN's networks read it: f32 planes (C x H x W) of 0..=255 values, and the
//! "area" resampling (PyTorch's `interpolate(mode="area")`, i.e. adaptive average pooling)
//! that builds the image pyramid and the 24x24 / 48x48 crops of the later stages.

use image::RgbImage;

/// An RGB image as three f32 planes of `height x width`, values 0..=255.
#[derive(Debug, Clone)]
pub struct Planar {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `3 * height * width` values, plane by plane.
    pub data: Vec<f32>,
}

/// A rectangle of a [`Planar`]: rows `y0..y1`, columns `x0..x1` (exclusive ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First column.
    pub x0: usize,
    /// First row.
    pub y0: usize,
    /// One past the last column.
    pub x1: usize,
    /// One past the last row.
    pub y1: usize,
}

impl Planar {
    /// The planes of an RGB image.
    pub fn from_rgb(image: &RgbImage) -> Planar {
        let (width, height) = (image.width() as usize, image.height() as usize);
        let plane = width * height;
        let mut data = vec![0f32; 3 * plane];
        for (i, px) in image.as_raw().chunks_exact(3).enumerate() {
            data[i] = px[0] as f32;
            data[plane + i] = px[1] as f32;
            data[2 * plane + i] = px[2] as f32;
        }
        Planar { width, height, data }
    }

    /// The whole image as a region.
    pub fn full(&self) -> Region {
        Region { x0: 0, y0: 0, x1: self.width, y1: self.height }
    }

    /// Resamples `region` to `out_h x out_w` by area averaging and writes the result, mapped by
    /// MTCNN's input normalization `(x - 127.5) / 128`, into `out` (3 planes, CHW).
    ///
    /// Output pixel `(i, j)` averages input rows `floor(i * h / out_h) .. ceil((i + 1) * h /
    /// out_h)` and the same for columns, dividing the sum by the window's height and then its
    /// width, as ATen's adaptive average pooling does. The sums (taken here column by column,
    /// then across the window) are of integer pixel values and exact while a window holds under
    /// 2^24 / 255 = 65793 pixels, so in any order they equal ATen's row-order f32 sums and the
    /// result matches PyTorch's bit for bit.
    pub fn area_resize_normalized(&self, region: Region, out_h: usize, out_w: usize, out: &mut [f32]) {
        let (h, w) = (region.y1 - region.y0, region.x1 - region.x0);
        debug_assert!(h > 0 && w > 0 && out.len() == 3 * out_h * out_w);
        let rows: Vec<(usize, usize)> = (0..out_h).map(|i| window(i, out_h, h)).collect();
        let cols: Vec<(usize, usize)> = (0..out_w).map(|j| window(j, out_w, w)).collect();
        let plane = self.width * self.height;
        let mut column_sums = vec![0f32; w];
        for c in 0..3 {
            let src = &self.data[c * plane..(c + 1) * plane];
            let dst = &mut out[c * out_h * out_w..(c + 1) * out_h * out_w];
            let row = |r: usize| &src[(region.y0 + r) * self.width + region.x0..][..w];
            for (i, &(r0, r1)) in rows.iter().enumerate() {
                column_sums.copy_from_slice(row(r0));
                for r in r0 + 1..r1 {
                    column_sums.iter_mut().zip(row(r)).for_each(|(s, v)| *s += v);
                }
                for (j, &(c0, c1)) in cols.iter().enumerate() {
                    let sum: f32 = column_sums[c0..c1].iter().sum();
                    let mean = sum / (r1 - r0) as f32 / (c1 - c0) as f32;
                    dst[i * out_w + j] = (mean - 127.5) * 0.0078125;
                }
            }
        }
    }
}

/// The input window `[start, end)` of output index `i` when `input` samples are pooled into
/// `output` (ATen's `start_index` / `end_index`).
fn window(i: usize, output: usize, input: usize) -> (usize, usize) {
    let start = (i * input) / output;
    let end = ((i + 1) * input).div_ceil(output);
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_the_input_and_overlap_when_upsampling() {
        assert_eq!(window(0, 2, 5), (0, 3));
        assert_eq!(window(1, 2, 5), (2, 5));
        // 3 inputs to 4 outputs: each output reads one or two inputs.
        let w: Vec<_> = (0..4).map(|i| window(i, 4, 3)).collect();
        assert_eq!(w, vec![(0, 1), (0, 2), (1, 3), (2, 3)]);
    }

    #[test]
    fn area_resize_averages_and_normalizes() {
        let mut img = RgbImage::new(4, 2);
        for (x, y, p) in img.enumerate_pixels_mut() {
            let v = (10 * (x + 4 * y)) as u8;
            *p = image::Rgb([v, 255, 0]);
        }
        let planar = Planar::from_rgb(&img);
        let mut out = vec![0f32; 3 * 2];
        planar.area_resize_normalized(planar.full(), 1, 2, &mut out);
        // Red: mean of (0, 10, 40, 50) = 25 and of (20, 30, 60, 70) = 45.
        assert_eq!(out[0], (25.0 - 127.5) * 0.0078125);
        assert_eq!(out[1], (45.0 - 127.5) * 0.0078125);
        assert_eq!(out[2], (255.0 - 127.5) * 0.0078125);
        assert_eq!(out[4], -127.5 * 0.0078125);
    }
}
