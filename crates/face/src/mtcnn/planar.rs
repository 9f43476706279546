//! The photo as MTCNN's networks read it: f32 planes (C x H x W) of 0..=255 values, and the
//! "area" resampling (PyTorch's `interpolate(mode="area")`, i.e. adaptive average pooling)
//! that builds the image pyramid and the 24x24 / 48x48 crops of the later stages.
//! [`AreaSums`] resamples the same way from summed-area tables, so that each pyramid level and
//! each crop costs its output's size rather than its region's; detection uses it.

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

/// An RGB image as one summed-area table (integral image) per channel: the sum of any
/// rectangle in four lookups. Sums of 8-bit values in u32, wrapping: a rectangle's sum comes out
/// exact while it holds under 2^32 / 255 pixels, however large the image.
pub(crate) struct AreaSums {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Per channel, `(height + 1) x (width + 1)`: entry `(y, x)` sums rows `..y`, columns `..x`.
    sums: Vec<u32>,
}

impl AreaSums {
    /// The tables of an RGB image.
    pub fn from_rgb(image: &RgbImage) -> AreaSums {
        let (width, height) = (image.width() as usize, image.height() as usize);
        let stride = width + 1;
        let table = (height + 1) * stride;
        let mut sums = vec![0u32; 3 * table];
        for (y, row) in image.as_raw().chunks_exact(3 * width).enumerate() {
            let mut row_sum = [0u32; 3];
            for (x, px) in row.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    row_sum[c] = row_sum[c].wrapping_add(px[c] as u32);
                    let above = sums[c * table + y * stride + x + 1];
                    sums[c * table + (y + 1) * stride + x + 1] = above.wrapping_add(row_sum[c]);
                }
            }
        }
        AreaSums { width, height, sums }
    }

    /// The whole image as a region.
    pub fn full(&self) -> Region {
        Region { x0: 0, y0: 0, x1: self.width, y1: self.height }
    }

    /// As [`Planar::area_resize_normalized`], with the same result: each window's sum is exact
    /// here, and so are Planar's and ATen's f32 sums while a window holds under 65793 pixels.
    pub fn area_resize_normalized(&self, region: Region, out_h: usize, out_w: usize, out: &mut [f32]) {
        let (h, w) = (region.y1 - region.y0, region.x1 - region.x0);
        debug_assert!(h > 0 && w > 0 && region.x1 <= self.width && region.y1 <= self.height);
        debug_assert!(out.len() == 3 * out_h * out_w);
        let stride = self.width + 1;
        let table = (self.height + 1) * stride;
        let cols: Vec<(usize, usize)> =
            (0..out_w).map(|j| window(j, out_w, w)).map(|(c0, c1)| (region.x0 + c0, region.x0 + c1)).collect();
        let widths: Vec<f32> = cols.iter().map(|(c0, c1)| (c1 - c0) as f32).collect();
        let mut row_sums = vec![0u32; out_w];
        for c in 0..3 {
            let t = &self.sums[c * table..(c + 1) * table];
            let dst = &mut out[c * out_h * out_w..(c + 1) * out_h * out_w];
            for (i, dst) in dst.chunks_exact_mut(out_w).enumerate() {
                let (r0, r1) = window(i, out_h, h);
                let (top, bottom) = (&t[(region.y0 + r0) * stride..], &t[(region.y0 + r1) * stride..]);
                for (s, &(c0, c1)) in row_sums.iter_mut().zip(&cols) {
                    *s = bottom[c1].wrapping_sub(bottom[c0]).wrapping_sub(top[c1]).wrapping_add(top[c0]);
                }
                // Apart from the lookups above, so that the divisions run as vectors.
                let height = (r1 - r0) as f32;
                for ((d, &s), &width) in dst.iter_mut().zip(&row_sums).zip(&widths) {
                    let mean = s as f32 / height / width;
                    *d = (mean - 127.5) * 0.0078125;
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
    fn summed_area_tables_resample_bit_for_bit_as_the_planes() {
        let mut seed = 1u32;
        let img = RgbImage::from_fn(37, 23, |_, _| {
            image::Rgb(std::array::from_fn(|_| {
                seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                (seed >> 24) as u8
            }))
        });
        let (planar, sums) = (Planar::from_rgb(&img), AreaSums::from_rgb(&img));
        let regions = [planar.full(), Region { x0: 3, y0: 5, x1: 20, y1: 9 }, Region { x0: 36, y0: 22, x1: 37, y1: 23 }];
        // Down, up and mixed sizes, as the pyramid and the crops ask for.
        for region in regions {
            for (oh, ow) in [(12, 12), (24, 24), (48, 48), (7, 30), (1, 1)] {
                let (mut a, mut b) = (vec![0f32; 3 * oh * ow], vec![0f32; 3 * oh * ow]);
                planar.area_resize_normalized(region, oh, ow, &mut a);
                sums.area_resize_normalized(region, oh, ow, &mut b);
                assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "{region:?} to {oh}x{ow}");
            }
        }
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
