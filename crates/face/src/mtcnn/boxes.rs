//! Box arithmetic between MTCNN's stages, in f32 and in the same order of operations as
//! facenet-pytorch (`detect_face.py`), so that the cascade keeps and drops the same boxes:
//! candidate generation from P-Net's map, the two non-maximum suppressions (torchvision's IoU
//! without the `+1`, and the numpy "Min" variant with it), regression, squaring and the
//! integer crop rectangle.

/// A candidate face box with its score and, until applied, its regression offsets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Left, top, right, bottom.
    pub rect: [f32; 4],
    /// Face probability of the stage that produced it.
    pub score: f32,
    /// Regression offsets `[dx1, dy1, dx2, dy2]`, relative to the box size.
    pub reg: [f32; 4],
}

/// P-Net's cell size and stride in the scaled image.
const CELL: f32 = 12.0;
const STRIDE: f32 = 2.0;

/// Candidates from one pyramid level: every cell of P-Net's `prob` map (row-major, `map_w`
/// wide) whose face probability is at least `threshold`, mapped back to the photo.
pub fn generate(prob: &[f32], reg: [&[f32]; 4], map_w: usize, scale: f32, threshold: f32) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (i, &p) in prob.iter().enumerate() {
        if p >= threshold {
            let (y, x) = ((i / map_w) as f32, (i % map_w) as f32);
            let x1 = ((STRIDE * x + 1.0) / scale).floor();
            let y1 = ((STRIDE * y + 1.0) / scale).floor();
            let x2 = ((STRIDE * x + CELL - 1.0 + 1.0) / scale).floor();
            let y2 = ((STRIDE * y + CELL - 1.0 + 1.0) / scale).floor();
            out.push(Candidate {
                rect: [x1, y1, x2, y2],
                score: p,
                reg: [reg[0][i], reg[1][i], reg[2][i], reg[3][i]],
            });
        }
    }
    out
}

/// How two boxes' overlap is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// Intersection over union, areas as `(x2 - x1) * (y2 - y1)` (torchvision's `nms`).
    Union,
    /// Intersection over the smaller area, areas as `(x2 - x1 + 1) * (y2 - y1 + 1)` (the
    /// numpy `nms` facenet-pytorch uses after O-Net).
    Min,
}

/// Non-maximum suppression: the indices of the boxes kept, highest score first. A box is
/// dropped when its overlap with a kept, higher-scoring box exceeds `threshold`.
pub fn nms(boxes: &[Candidate], threshold: f32, overlap: Overlap) -> Vec<usize> {
    let plus = if overlap == Overlap::Min { 1.0 } else { 0.0 };
    let area = |r: &[f32; 4]| (r[2] - r[0] + plus) * (r[3] - r[1] + plus);
    let areas: Vec<f32> = boxes.iter().map(|b| area(&b.rect)).collect();
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    // Stable, so equal scores keep the earlier box first, as a stable descending sort would.
    order.sort_by(|&a, &b| boxes[b].score.total_cmp(&boxes[a].score));
    let mut suppressed = vec![false; boxes.len()];
    let mut keep = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        if suppressed[i] {
            continue;
        }
        keep.push(i);
        let a = &boxes[i].rect;
        for &j in &order[k + 1..] {
            if suppressed[j] {
                continue;
            }
            let b = &boxes[j].rect;
            let w = (a[2].min(b[2]) - a[0].max(b[0]) + plus).max(0.0);
            let h = (a[3].min(b[3]) - a[1].max(b[1]) + plus).max(0.0);
            let inter = w * h;
            let o = match overlap {
                Overlap::Union => inter / (areas[i] + areas[j] - inter),
                Overlap::Min => inter / areas[i].min(areas[j]),
            };
            if o > threshold {
                suppressed[j] = true;
            }
        }
    }
    keep
}

/// The boxes at `keep`, in that order.
pub fn select(boxes: &[Candidate], keep: &[usize]) -> Vec<Candidate> {
    keep.iter().map(|&i| boxes[i]).collect()
}

/// P-Net's regression: offsets scaled by the box size without the `+1`.
pub fn regress_proposal(b: &mut Candidate) {
    apply_offsets(b, 0.0);
}

/// R-Net's and O-Net's regression (`bbreg`): offsets scaled by the inclusive box size.
pub fn regress(b: &mut Candidate) {
    apply_offsets(b, 1.0);
}

/// Moves each edge by its offset times the box's width or height (plus `extra`).
fn apply_offsets(b: &mut Candidate, extra: f32) {
    let w = b.rect[2] - b.rect[0] + extra;
    let h = b.rect[3] - b.rect[1] + extra;
    b.rect = [
        b.rect[0] + b.reg[0] * w,
        b.rect[1] + b.reg[1] * h,
        b.rect[2] + b.reg[2] * w,
        b.rect[3] + b.reg[3] * h,
    ];
}

/// Makes the box square around its centre, side the longer of its sides (`rerec`).
pub fn square(b: &mut Candidate) {
    let h = b.rect[3] - b.rect[1];
    let w = b.rect[2] - b.rect[0];
    let l = w.max(h);
    b.rect[0] = b.rect[0] + w * 0.5 - l * 0.5;
    b.rect[1] = b.rect[1] + h * 0.5 - l * 0.5;
    b.rect[2] = b.rect[0] + l;
    b.rect[3] = b.rect[1] + l;
}

/// The pixels a box covers inside a `width x height` photo, as `(x0, y0, x1, y1)` with
/// exclusive ends (`pad`: coordinates truncated towards zero, 1-based starts clamped to 1,
/// ends to the photo); `None` when nothing of the box is inside.
pub fn crop_rect(b: &Candidate, width: usize, height: usize) -> Option<(usize, usize, usize, usize)> {
    let t = |v: f32| v.trunc() as i64;
    let x = t(b.rect[0]).max(1);
    let y = t(b.rect[1]).max(1);
    let ex = t(b.rect[2]).min(width as i64);
    let ey = t(b.rect[3]).min(height as i64);
    if ex > x - 1 && ey > y - 1 {
        Some(((x - 1) as usize, (y - 1) as usize, ex as usize, ey as usize))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(rect: [f32; 4], score: f32) -> Candidate {
        Candidate { rect, score, reg: [0.0; 4] }
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes() {
        let boxes = [
            cand([0.0, 0.0, 10.0, 10.0], 0.8),
            cand([1.0, 1.0, 11.0, 11.0], 0.9),
            cand([50.0, 50.0, 60.0, 60.0], 0.7),
        ];
        assert_eq!(nms(&boxes, 0.5, Overlap::Union), vec![1, 2]);
        // IoU of the first two is 81 / 119 = 0.68: kept apart at a 0.7 threshold.
        assert_eq!(nms(&boxes, 0.7, Overlap::Union), vec![1, 0, 2]);
    }

    #[test]
    fn min_overlap_drops_a_box_inside_another() {
        let boxes = [cand([0.0, 0.0, 99.0, 99.0], 0.9), cand([10.0, 10.0, 29.0, 29.0], 0.95)];
        // IoU is 400 / 10000, but the small box lies wholly inside the big one.
        assert_eq!(nms(&boxes, 0.7, Overlap::Union), vec![1, 0]);
        assert_eq!(nms(&boxes, 0.7, Overlap::Min), vec![1]);
    }

    #[test]
    fn square_keeps_the_centre() {
        let mut b = cand([10.0, 20.0, 30.0, 60.0], 1.0);
        square(&mut b);
        assert_eq!(b.rect, [0.0, 20.0, 40.0, 60.0]);
    }

    #[test]
    fn crop_rect_clamps_to_the_photo() {
        assert_eq!(crop_rect(&cand([-5.5, 3.9, 20.2, 300.0], 1.0), 100, 200), Some((0, 2, 20, 200)));
        assert_eq!(crop_rect(&cand([150.0, 0.0, 170.0, 20.0], 1.0), 100, 200), None);
    }

    #[test]
    fn generate_maps_cells_back_to_the_photo() {
        let prob = [0.1, 0.7, 0.2, 0.65];
        let zeros = [0.0f32; 4];
        let regs = [&zeros[..], &zeros[..], &zeros[..], &[0.5, 0.25, 0.0, -0.5][..]];
        let c = generate(&prob, regs, 2, 0.5, 0.6);
        assert_eq!(c.len(), 2);
        // Cell (y 0, x 1): (2 * 1 + 1) / 0.5 = 6, (2 * 1 + 12) / 0.5 = 28.
        assert_eq!(c[0].rect, [6.0, 2.0, 28.0, 24.0]);
        assert_eq!(c[1].rect, [6.0, 6.0, 28.0, 28.0]);
        assert_eq!(c[1].reg, [0.0, 0.0, 0.0, -0.5]);
    }
}
