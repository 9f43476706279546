//! MTCNN's layers as direct CPU kernels on plain `C x H x W` buffers, one image per call, so
//! that pyramid levels and crops can run side by side on the threads (see [`parallel_map`]).
//! The networks are tiny (3 to 128 channels, maps down to 3x3): per-layer tensor ops would
//! spend more time dispatching, allocating and waiting at barriers than multiplying.
//!
//! A valid stride-1 convolution is computed over the input plane read as one flat row: output
//! position `p = y * S + x` (`S` the row stride) sums `input[c][p + ky * S + kx]` over the taps,
//! so every tap is a contiguous slice whatever the map's width. The `k - 1` columns per row
//! that wrap into the next row are computed too and left in place: a [`Map`] says which values
//! are the map's, and the next layer reads with the same stride. Sums run over the taps in
//! PyTorch's weight order (input channel, row, column), then the bias and the PReLU as each
//! tile is stored; the results differ from PyTorch's by float rounding only (tests/mtcnn.rs
//! bounds the drift).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Output channels computed together by the convolution kernel (their accumulators stay in
/// registers while each input slice is loaded once, each weight broadcast once).
const BLOCK: usize = 6;

/// Where a feature map's values lie in its buffer: value `(c, y, x)` at `c * plane + y * stride
/// + x`, for `y < h`, `x < w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Map {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub stride: usize,
    pub plane: usize,
}

impl Map {
    /// `c` planes of `h x w`, packed.
    pub fn dense(c: usize, h: usize, w: usize) -> Map {
        Map { c, h, w, stride: w, plane: h * w }
    }

    /// The buffer length the map needs: up to its last value.
    fn len(&self) -> usize {
        (self.c - 1) * self.plane + (self.h - 1) * self.stride + self.w
    }

    /// Row `y` of channel `c`.
    pub fn row<'a>(&self, data: &'a [f32], c: usize, y: usize) -> &'a [f32] {
        &data[c * self.plane + y * self.stride..][..self.w]
    }
}

/// A valid, stride-1 convolution with bias and optional per-channel PReLU.
pub struct ConvLayer {
    c_in: usize,
    c_out: usize,
    k: usize,
    /// For each block of output channels, `[tap][channel in block]`.
    packed: Vec<f32>,
    bias: Vec<f32>,
    alpha: Option<Vec<f32>>,
}

impl ConvLayer {
    /// From PyTorch's `c_out x c_in x k x k` weight.
    pub fn new(
        weight: &[f32],
        bias: Vec<f32>,
        alpha: Option<Vec<f32>>,
        c_out: usize,
        c_in: usize,
        k: usize,
    ) -> ConvLayer {
        let taps = c_in * k * k;
        debug_assert_eq!(weight.len(), c_out * taps);
        let mut packed = Vec::with_capacity(weight.len());
        for (o0, b) in blocks(c_out) {
            for t in 0..taps {
                packed.extend((o0..o0 + b).map(|o| weight[o * taps + t]));
            }
        }
        ConvLayer { c_in, c_out, k, packed, bias, alpha }
    }

    /// Convolves the map `m` of `input` into `out`; the result has `m`'s row stride.
    pub fn forward(&self, input: &[f32], m: Map, out: &mut Vec<f32>) -> Map {
        assert!(m.c == self.c_in && m.h >= self.k && m.w >= self.k && input.len() >= m.len());
        let (oh, ow) = (m.h - self.k + 1, m.w - self.k + 1);
        // From the first output to the last, wrapped columns included.
        let len = (oh - 1) * m.stride + ow;
        let taps: Vec<usize> = (0..self.c_in)
            .flat_map(|c| (0..self.k).flat_map(move |ky| (0..self.k).map(move |kx| c * m.plane + ky * m.stride + kx)))
            .collect();
        // Every value is written below: grow, never clear.
        if out.len() < self.c_out * len {
            out.resize(self.c_out * len, 0.0);
        }
        let mut offset = 0;
        for (o0, b) in blocks(self.c_out) {
            let weights = &self.packed[offset..offset + taps.len() * b];
            offset += weights.len();
            let dst = &mut out[o0 * len..(o0 + b) * len];
            let alpha = self.alpha.as_ref().map(|a| &a[o0..o0 + b]);
            isa::conv_block(input, &taps, weights, (&self.bias[o0..o0 + b], alpha), len, dst);
        }
        Map { c: self.c_out, h: oh, w: ow, stride: m.stride, plane: len }
    }
}

/// The output-channel blocks `(first, size)`: full blocks, then 4, 2, 1 for the rest.
fn blocks(c_out: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut o = 0;
    for b in [BLOCK, 4, 2, 1] {
        while c_out - o >= b {
            out.push((o, b));
            o += b;
        }
    }
    out
}

/// Max pooling with PyTorch's `ceil_mode=True` (the last window may hang over the edge and
/// then covers what is inside) of the map `m` of `input` into `out`, packed.
pub fn max_pool_ceil(input: &[f32], m: Map, k: usize, s: usize, out: &mut Vec<f32>) -> Map {
    let size = |len: usize| len.saturating_sub(k).div_ceil(s) + 1;
    let (oh, ow) = (size(m.h), size(m.w));
    out.clear();
    out.reserve(m.c * oh * ow);
    // The maximum down each window's rows first (contiguous, so vectorized), then across.
    let mut column_max = vec![0f32; m.w];
    for c in 0..m.c {
        for oy in 0..oh {
            let (r0, r1) = (oy * s, (oy * s + k).min(m.h));
            column_max.copy_from_slice(m.row(input, c, r0));
            for r in r0 + 1..r1 {
                column_max.iter_mut().zip(m.row(input, c, r)).for_each(|(a, &v)| *a = a.max(v));
            }
            match k {
                2 => across::<2>(&column_max, s, ow, out),
                3 => across::<3>(&column_max, s, ow, out),
                _ => out.extend((0..ow).map(|ox| max(&column_max[ox * s..(ox * s + k).min(m.w)]))),
            }
        }
    }
    Map::dense(m.c, oh, ow)
}

/// The maxima of `ow` windows of `K` values at stride `s` along `row`, the last one cut short
/// if it hangs over the end.
fn across<const K: usize>(row: &[f32], s: usize, ow: usize, out: &mut Vec<f32>) {
    let full = if row.len() >= K { ((row.len() - K) / s + 1).min(ow) } else { 0 };
    out.extend((0..full).map(|ox| {
        let window: &[f32; K] = row[ox * s..ox * s + K].try_into().unwrap();
        max(window)
    }));
    out.extend((full..ow).map(|ox| max(&row[ox * s..])));
}

fn max(values: &[f32]) -> f32 {
    values.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v))
}

/// A fully connected layer `x W^T + b` with optional per-feature PReLU.
pub struct DenseLayer {
    in_f: usize,
    out_f: usize,
    /// `in_f x out_f`.
    weight_t: Vec<f32>,
    bias: Vec<f32>,
    alpha: Option<Vec<f32>>,
}

impl DenseLayer {
    /// From PyTorch's `out_f x in_f` weight.
    pub fn new(weight: &[f32], bias: Vec<f32>, alpha: Option<Vec<f32>>, out_f: usize, in_f: usize) -> DenseLayer {
        let weight_t = (0..in_f).flat_map(|i| (0..out_f).map(move |o| weight[o * in_f + i])).collect();
        DenseLayer { in_f, out_f, weight_t, bias, alpha }
    }

    /// The layer's output for one input vector.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        debug_assert_eq!(x.len(), self.in_f);
        let mut out = vec![0f32; self.out_f];
        isa::dense(x, &self.weight_t, &mut out);
        for (o, v) in out.iter_mut().enumerate() {
            *v += self.bias[o];
            if let Some(a) = &self.alpha {
                if *v < 0.0 {
                    *v *= a[o];
                }
            }
        }
        out
    }
}

/// The map `m` of `x` flattened in (W, H, C) order, as facenet-pytorch's `permute(0, 3, 2, 1)`
/// before its dense layers.
pub fn flatten_whc(x: &[f32], m: Map) -> Vec<f32> {
    let mut out = Vec::with_capacity(m.c * m.h * m.w);
    for xx in 0..m.w {
        for y in 0..m.h {
            out.extend((0..m.c).map(|c| x[c * m.plane + y * m.stride + xx]));
        }
    }
    out
}

/// The face probability from the two logits (softmax, class 1), as softmax computes it.
pub fn face_probability(l0: f32, l1: f32) -> f32 {
    let m = l0.max(l1);
    let (e0, e1) = ((l0 - m).exp(), (l1 - m).exp());
    e1 / (e0 + e1)
}

/// The buffers one thread reuses from layer to layer and image to image: the network's input
/// and the two feature maps the layers alternate between.
#[derive(Default)]
pub struct Scratch {
    pub input: Vec<f32>,
    pub a: Vec<f32>,
    pub b: Vec<f32>,
}

/// [`Scratch`] kept from one detection to the next: a pyramid's buffers are megabytes, and
/// fresh ones cost more in page faults than P-Net's first level does in arithmetic.
#[derive(Default)]
pub struct ScratchPool(Mutex<Vec<Scratch>>);

/// Buffers larger than this (in f32 values, all three together) are not kept.
const KEEP_AT_MOST: usize = 16 << 20;

impl ScratchPool {
    fn take(&self) -> Scratch {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_default()
    }

    fn put(&self, s: Scratch) {
        if s.input.capacity() + s.a.capacity() + s.b.capacity() <= KEEP_AT_MOST {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push(s);
        }
    }
}

/// `f(scratch, i)` for `i in 0..n` on up to `threads` threads (the caller's included), each
/// with its own [`Scratch`] from `pool`, items handed out in order as threads free up; the
/// results in item order.
pub fn parallel_map<T: Send>(
    n: usize,
    threads: usize,
    pool: &ScratchPool,
    f: impl Fn(&mut Scratch, usize) -> T + Sync,
) -> Vec<T> {
    let threads = threads.clamp(1, n.max(1));
    if threads == 1 {
        let mut s = pool.take();
        let out = (0..n).map(|i| f(&mut s, i)).collect();
        pool.put(s);
        return out;
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    let work = || {
        let mut s = pool.take();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                break;
            }
            let r = f(&mut s, i);
            results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
        }
        pool.put(s);
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(work);
        }
        work();
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every item was computed"))
        .collect()
}

/// The kernels: AVX2 + FMA intrinsics where the CPU has them (checked once by std), plain
/// loops otherwise.
mod isa {
    /// The bias and the PReLU slopes (if any) of a block of output channels.
    pub type Epilogue<'a> = (&'a [f32], Option<&'a [f32]>);

    /// `b` output channels over `len` flat positions: `dst[o * len + p] = prelu_o(sum_t w[t * b
    /// + o] * input[taps[t] + p] + bias_o)`, `b` being the epilogue's length.
    pub fn conv_block(input: &[f32], taps: &[usize], w: &[f32], epilogue: Epilogue, len: usize, dst: &mut [f32]) {
        let b = epilogue.0.len();
        // Every read and write stays inside the slices: the intrinsics below rely on it.
        assert!(taps.iter().all(|&off| off + len <= input.len()));
        assert!(w.len() == taps.len() * b && dst.len() == b * len && epilogue.1.is_none_or(|a| a.len() == b));
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                // SAFETY: the features were just detected; the bounds asserted above. Tiles of
                // 12 to 16 accumulators: as many as the 16 registers hold beside the inputs.
                unsafe {
                    match b {
                        6 => return avx2::tile::<6, 2>(input, taps, w, epilogue, len, dst),
                        4 => return avx2::tile::<4, 2>(input, taps, w, epilogue, len, dst),
                        2 => return avx2::tile::<2, 4>(input, taps, w, epilogue, len, dst),
                        1 => return avx2::tile::<1, 4>(input, taps, w, epilogue, len, dst),
                        _ => {}
                    }
                }
            }
        }
        portable_conv_block(input, taps, w, epilogue, len, dst)
    }

    /// [`conv_block`] in plain loops.
    pub fn portable_conv_block(
        input: &[f32],
        taps: &[usize],
        w: &[f32],
        epilogue: Epilogue,
        len: usize,
        dst: &mut [f32],
    ) {
        let b = epilogue.0.len();
        for o in 0..b {
            let row = &mut dst[o * len..(o + 1) * len];
            row.fill(0.0);
            for (t, &off) in taps.iter().enumerate() {
                let wv = w[t * b + o];
                for (d, &v) in row.iter_mut().zip(&input[off..off + len]) {
                    *d += wv * v;
                }
            }
            let (bias, alpha) = (epilogue.0[o], epilogue.1.map(|a| a[o]));
            for d in row.iter_mut() {
                *d += bias;
                if let Some(a) = alpha {
                    if *d < 0.0 {
                        *d *= a;
                    }
                }
            }
        }
    }

    /// `out[o] = sum_i x[i] * w_t[i * out.len() + o]`.
    pub fn dense(x: &[f32], w_t: &[f32], out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                // SAFETY: the features were just detected.
                return unsafe { avx2::dense(x, w_t, out) };
            }
        }
        portable_dense(x, w_t, out)
    }

    /// [`dense`] in plain loops.
    pub fn portable_dense(x: &[f32], w_t: &[f32], out: &mut [f32]) {
        let n = out.len();
        for (i, &xi) in x.iter().enumerate() {
            for (o, &wv) in out.iter_mut().zip(&w_t[i * n..(i + 1) * n]) {
                *o += xi * wv;
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    mod avx2 {
        use std::arch::x86_64::*;

        /// `B` channels, `8 * V` positions at a time, accumulators in registers; the rest 8 at a
        /// time, the last, partial tile read with a mask.
        ///
        /// # Safety
        /// AVX2 and FMA present; `off + len <= input.len()` for every tap, `w.len() ==
        /// taps.len() * B`, `dst.len() == B * len`, the epilogue's slices `B` long.
        #[target_feature(enable = "avx2,fma")]
        pub unsafe fn tile<const B: usize, const V: usize>(
            input: &[f32],
            taps: &[usize],
            w: &[f32],
            epilogue: super::Epilogue,
            len: usize,
            dst: &mut [f32],
        ) {
            let mut p = 0;
            while p + 8 * V <= len {
                let acc = sums::<B, V, false>(input, taps, w, p, _mm256_setzero_si256());
                store::<B, V>(acc, epilogue, dst, len, p, 8);
                p += 8 * V;
            }
            let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            while p < len {
                let n = (len - p).min(8);
                let acc = if n == 8 {
                    sums::<B, 1, false>(input, taps, w, p, _mm256_setzero_si256())
                } else {
                    sums::<B, 1, true>(input, taps, w, p, _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lanes))
                };
                store::<B, 1>(acc, epilogue, dst, len, p, n);
                p += 8;
            }
        }

        /// Bias and PReLU, then the `V` vectors of each channel to `dst` at `p`, only `n`
        /// values of the last one.
        #[inline(always)]
        unsafe fn store<const B: usize, const V: usize>(
            acc: [[__m256; V]; B],
            epilogue: super::Epilogue,
            dst: &mut [f32],
            len: usize,
            p: usize,
            n: usize,
        ) {
            let (bias, alpha) = epilogue;
            for (o, row) in acc.iter().enumerate() {
                for (v, a) in row.iter().enumerate() {
                    let mut a = _mm256_add_ps(*a, _mm256_set1_ps(*bias.get_unchecked(o)));
                    if let Some(alpha) = alpha {
                        let negative = _mm256_cmp_ps::<_CMP_LT_OQ>(a, _mm256_setzero_ps());
                        a = _mm256_blendv_ps(a, _mm256_mul_ps(a, _mm256_set1_ps(*alpha.get_unchecked(o))), negative);
                    }
                    let d = dst.as_mut_ptr().add(o * len + p + 8 * v);
                    if n == 8 {
                        _mm256_storeu_ps(d, a);
                    } else {
                        let mut tmp = [0f32; 8];
                        _mm256_storeu_ps(tmp.as_mut_ptr(), a);
                        std::ptr::copy_nonoverlapping(tmp.as_ptr(), d, n);
                    }
                }
            }
        }

        #[inline(always)]
        unsafe fn sums<const B: usize, const V: usize, const MASKED: bool>(
            input: &[f32],
            taps: &[usize],
            w: &[f32],
            p: usize,
            mask: __m256i,
        ) -> [[__m256; V]; B] {
            let mut acc = [[_mm256_setzero_ps(); V]; B];
            let (src, wt) = (input.as_ptr().add(p), w.as_ptr());
            for (t, &off) in taps.iter().enumerate() {
                let mut x = [_mm256_setzero_ps(); V];
                for (v, x) in x.iter_mut().enumerate() {
                    *x = if MASKED {
                        _mm256_maskload_ps(src.add(off + 8 * v), mask)
                    } else {
                        _mm256_loadu_ps(src.add(off + 8 * v))
                    };
                }
                for (o, row) in acc.iter_mut().enumerate() {
                    let wv = _mm256_set1_ps(*wt.add(t * B + o));
                    for (a, x) in row.iter_mut().zip(&x) {
                        *a = _mm256_fmadd_ps(wv, *x, *a);
                    }
                }
            }
            acc
        }

        /// # Safety
        /// AVX2 and FMA present.
        #[target_feature(enable = "avx2,fma")]
        pub unsafe fn dense(x: &[f32], w_t: &[f32], out: &mut [f32]) {
            let n = out.len();
            for (i, &xi) in x.iter().enumerate() {
                for (o, &wv) in out.iter_mut().zip(&w_t[i * n..(i + 1) * n]) {
                    *o = xi.mul_add(wv, *o);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The convolution by its definition, in f64.
    fn reference_conv(
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        dims: (usize, usize, usize, usize, usize),
    ) -> Vec<f64> {
        let (c_in, c_out, k, h, w) = dims;
        let (oh, ow) = (h - k + 1, w - k + 1);
        let mut out = Vec::new();
        for o in 0..c_out {
            for y in 0..oh {
                for x in 0..ow {
                    let mut s = bias[o] as f64;
                    for c in 0..c_in {
                        for ky in 0..k {
                            for kx in 0..k {
                                s += weight[((o * c_in + c) * k + ky) * k + kx] as f64
                                    * input[(c * h + y + ky) * w + x + kx] as f64;
                            }
                        }
                    }
                    out.push(s);
                }
            }
        }
        out
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1664525).wrapping_add(1013904223);
                (s >> 8) as f32 / (1 << 24) as f32 - 0.5
            })
            .collect()
    }

    #[test]
    fn convolution_matches_its_definition_at_every_size() {
        // Channel counts that exercise every block size, widths below, at and past a tile.
        for (c_in, c_out, k, h, w) in
            [(3, 10, 3, 5, 7), (3, 11, 3, 20, 40), (16, 32, 3, 9, 9), (2, 3, 2, 3, 3), (4, 6, 1, 4, 17)]
        {
            let input = values(c_in * h * w, 1);
            let weight = values(c_out * c_in * k * k, 2);
            let bias = values(c_out, 3);
            let layer = ConvLayer::new(&weight, bias.clone(), None, c_out, c_in, k);
            let mut out = Vec::new();
            let m = layer.forward(&input, Map::dense(c_in, h, w), &mut out);
            assert_eq!((m.c, m.h, m.w), (c_out, h - k + 1, w - k + 1));
            let rows = (0..m.c).flat_map(|c| (0..m.h).map(move |y| (c, y)));
            let got: Vec<f32> = rows.flat_map(|(c, y)| m.row(&out, c, y).to_vec()).collect();
            let want = reference_conv(&input, &weight, &bias, (c_in, c_out, k, h, w));
            assert_eq!(got.len(), want.len());
            for (a, b) in got.iter().zip(&want) {
                assert!((*a as f64 - b).abs() < 1e-5, "{c_in}->{c_out} k{k} {h}x{w}: {a} vs {b}");
            }
            // The next layer reads the strided map as it is: a 1x1 identity keeps every value.
            let eye: Vec<f32> = (0..c_out * c_out).map(|i| if i % (c_out + 1) == 0 { 1.0 } else { 0.0 }).collect();
            let identity = ConvLayer::new(&eye, vec![0.0; c_out], None, c_out, c_out, 1);
            let mut again = Vec::new();
            let m2 = identity.forward(&out, m, &mut again);
            for c in 0..m.c {
                for y in 0..m.h {
                    assert_eq!(m2.row(&again, c, y), m.row(&out, c, y));
                }
            }
        }
    }

    #[test]
    fn every_kernel_gives_the_same_numbers() {
        // The dispatched kernel (AVX2 on most machines) against the plain loops, including
        // partial tiles and every block size.
        for (c_in, b, k, h, w) in
            [(3, 6, 3, 12, 13), (5, 4, 2, 3, 3), (2, 2, 3, 5, 30), (1, 1, 1, 1, 3), (4, 6, 3, 9, 9)]
        {
            let input = values(c_in * h * w, 4);
            let taps: Vec<usize> =
                (0..c_in).flat_map(|c| (0..k).flat_map(move |y| (0..k).map(move |x| c * h * w + y * w + x))).collect();
            let len = (h - k) * w + w - k + 1;
            let weights = values(taps.len() * b, 5);
            let (bias, alpha) = (values(b, 6), values(b, 7));
            let (mut fast, mut plain) = (vec![0f32; b * len], vec![0f32; b * len]);
            isa::conv_block(&input, &taps, &weights, (&bias, Some(&alpha)), len, &mut fast);
            isa::portable_conv_block(&input, &taps, &weights, (&bias, Some(&alpha)), len, &mut plain);
            for (x, y) in fast.iter().zip(&plain) {
                assert!((x - y).abs() < 1e-5, "{x} vs {y}");
            }
        }
        let (x, w_t) = (values(37, 8), values(37 * 11, 9));
        let (mut fast, mut plain) = (vec![0f32; 11], vec![0f32; 11]);
        isa::dense(&x, &w_t, &mut fast);
        isa::portable_dense(&x, &w_t, &mut plain);
        for (x, y) in fast.iter().zip(&plain) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }

    #[test]
    fn prelu_scales_only_negative_outputs() {
        // 1x1 identity convolution with bias 0: the PReLU alone.
        let layer = ConvLayer::new(&[1.0], vec![0.0], Some(vec![0.25]), 1, 1, 1);
        let mut out = Vec::new();
        layer.forward(&[-2.0, 3.0], Map::dense(1, 1, 2), &mut out);
        assert_eq!(out, vec![-0.5, 3.0]);
    }

    #[test]
    fn ceil_mode_pooling_keeps_the_overhanging_window() {
        let mut out = Vec::new();
        let m = max_pool_ceil(&[1., 4., 2., 3., 5., 0., 0., 0., 0., 9.], Map::dense(1, 2, 5), 2, 2, &mut out);
        assert_eq!((m.h, m.w, out), (1, 3, vec![4., 3., 9.]));
    }

    #[test]
    fn dense_and_flatten_follow_pytorch() {
        let layer = DenseLayer::new(&[1., 2., 3., 4., 5., 6.], vec![0.5, -100.0], Some(vec![0.0, 0.5]), 2, 3);
        assert_eq!(layer.forward(&[1., 1., 1.]), vec![6.5, -42.5]);
        // C = 2, H = 1, W = 2: c0 [a b], c1 [c d] in (W, H, C) order is a c b d.
        assert_eq!(flatten_whc(&[1., 2., 3., 4.], Map::dense(2, 1, 2)), vec![1., 3., 2., 4.]);
    }

    #[test]
    fn parallel_map_keeps_item_order() {
        let pool = ScratchPool::default();
        let v = parallel_map(100, 3, &pool, |_, i| i * i);
        assert_eq!(v, (0..100).map(|i| i * i).collect::<Vec<_>>());
        assert!(parallel_map(0, 4, &pool, |_, i| i).is_empty());
    }
}
