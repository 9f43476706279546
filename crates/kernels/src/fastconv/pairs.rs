//! Splitting a row into its even and odd elements and merging them back, with AVX2 where the
//! CPU has it: the Winograd transforms read and write 2x2 tiles, and stride-2 im2col reads
//! every other pixel; the compiler leaves these stride-2 copies scalar (where they took a
//! third of a 56x56 layer's time). `isa` is a level the CPU has ([`Isa::capped`]).

use crate::isa::Isa;

/// `even[k] = src[2k]`, `odd[k] = src[2k + 1]` for every whole pair of `src`.
pub(super) fn split(isa: Isa, src: &[f32], even: &mut [f32], odd: &mut [f32]) {
    let n = src.len() / 2;
    let (even, odd) = (&mut even[..n], &mut odd[..n]);
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if isa >= Isa::Avx2 {
        // SAFETY: the CPU has AVX2 (`isa` is capped); the slices hold 2n, n and n floats.
        done = unsafe { split_avx2(&src[..2 * n], even, odd) };
    }
    for k in done..n {
        even[k] = src[2 * k];
        odd[k] = src[2 * k + 1];
    }
}

/// `dst[k] = src[2k]` for every `k < dst.len()`; `src` holds at least `2 dst.len() - 1`
/// floats.
pub(super) fn evens(isa: Isa, src: &[f32], dst: &mut [f32]) {
    let n = dst.len();
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if isa >= Isa::Avx2 {
        // Whole blocks of 8 read 16 floats: stop where `src` has fewer left.
        let blocks = (src.len() / 2).min(n) / 8 * 8;
        // SAFETY: the CPU has AVX2 (`isa` is capped); `src` holds `2 blocks` floats and `dst`
        // `blocks`.
        done = unsafe { evens_avx2(&src[..2 * blocks], &mut dst[..blocks]) };
    }
    for k in done..n {
        dst[k] = src[2 * k];
    }
}

/// `dst[2k] += src[k]` for every `k < src.len()`; `dst` holds at least `2 src.len() - 1`
/// floats.
pub(super) fn add_evens(isa: Isa, src: &[f32], dst: &mut [f32]) {
    let n = src.len();
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if isa >= Isa::Avx2 {
        // Whole blocks of 8 touch 16 floats of `dst`: stop where it has fewer left.
        let blocks = n.min(dst.len() / 2) / 8 * 8;
        // SAFETY: the CPU has AVX2 (`isa` is capped); `src` holds `blocks` floats and `dst`
        // `2 blocks`.
        done = unsafe { add_evens_avx2(&src[..blocks], &mut dst[..2 * blocks]) };
    }
    for k in done..n {
        dst[2 * k] += src[k];
    }
}

/// `dst[2k] = even[k]`, `dst[2k + 1] = odd[k]` for `k < dst.len() / 2`.
pub(super) fn merge(isa: Isa, even: &[f32], odd: &[f32], dst: &mut [f32]) {
    let n = dst.len() / 2;
    let (even, odd) = (&even[..n], &odd[..n]);
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if isa >= Isa::Avx2 {
        // SAFETY: the CPU has AVX2 (`isa` is capped); the slices hold n, n and at least 2n
        // floats.
        done = unsafe { merge_avx2(even, odd, &mut dst[..2 * n]) };
    }
    for k in done..n {
        dst[2 * k] = even[k];
        dst[2 * k + 1] = odd[k];
    }
}

/// Eight pairs at a time; returns the pairs done.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn split_avx2(src: &[f32], even: &mut [f32], odd: &mut [f32]) -> usize {
    use std::arch::x86_64::*;
    let n = even.len() / 8 * 8;
    for k in (0..n).step_by(8) {
        // a = s0..s7, b = s8..s15; shuffles take lanes within 128-bit halves, so the
        // result is [e0 e1 e4 e5 | e2 e3 e6 e7] until the 64-bit permute puts it in order.
        let a = _mm256_loadu_ps(src.as_ptr().add(2 * k));
        let b = _mm256_loadu_ps(src.as_ptr().add(2 * k + 8));
        let e = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
        let o = _mm256_shuffle_ps::<0b11_01_11_01>(a, b);
        let order = |v: __m256| {
            _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)))
        };
        _mm256_storeu_ps(even.as_mut_ptr().add(k), order(e));
        _mm256_storeu_ps(odd.as_mut_ptr().add(k), order(o));
    }
    n
}

/// Eight at a time; returns the evens done (all of `dst`, a multiple of 8 long).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn evens_avx2(src: &[f32], dst: &mut [f32]) -> usize {
    use std::arch::x86_64::*;
    let n = dst.len() / 8 * 8;
    let order = |v: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)));
    for k in (0..n).step_by(8) {
        // As in `split_avx2`, without the odd half.
        let a = _mm256_loadu_ps(src.as_ptr().add(2 * k));
        let b = _mm256_loadu_ps(src.as_ptr().add(2 * k + 8));
        _mm256_storeu_ps(dst.as_mut_ptr().add(k), order(_mm256_shuffle_ps::<0b10_00_10_00>(a, b)));
    }
    n
}

/// Eight at a time; returns the sums done (all of `src`, a multiple of 8 long). The odd
/// elements of `dst` get `+ 0.0`, which leaves every value but `-0.0` as it was.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_evens_avx2(src: &[f32], dst: &mut [f32]) -> usize {
    use std::arch::x86_64::*;
    let n = src.len() / 8 * 8;
    let zero = _mm256_setzero_ps();
    for k in (0..n).step_by(8) {
        // As in `merge_avx2` with zeros for the odd half: [s0 0 s1 0 .. s3 0], [s4 0 .. s7 0].
        let s = _mm256_loadu_ps(src.as_ptr().add(k));
        let (lo, hi) = (_mm256_unpacklo_ps(s, zero), _mm256_unpackhi_ps(s, zero));
        let d = dst.as_mut_ptr().add(2 * k);
        _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), _mm256_permute2f128_ps::<0x20>(lo, hi)));
        let d = d.add(8);
        _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), _mm256_permute2f128_ps::<0x31>(lo, hi)));
    }
    n
}

/// Eight pairs at a time; returns the pairs done.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn merge_avx2(even: &[f32], odd: &[f32], dst: &mut [f32]) -> usize {
    use std::arch::x86_64::*;
    let n = even.len() / 8 * 8;
    for k in (0..n).step_by(8) {
        let e = _mm256_loadu_ps(even.as_ptr().add(k));
        let o = _mm256_loadu_ps(odd.as_ptr().add(k));
        // [e0 o0 e1 o1 | e4 o4 e5 o5] and [e2 o2 e3 o3 | e6 o6 e7 o7], then the halves.
        let lo = _mm256_unpacklo_ps(e, o);
        let hi = _mm256_unpackhi_ps(e, o);
        _mm256_storeu_ps(
            dst.as_mut_ptr().add(2 * k),
            _mm256_permute2f128_ps::<0x20>(lo, hi),
        );
        _mm256_storeu_ps(
            dst.as_mut_ptr().add(2 * k + 8),
            _mm256_permute2f128_ps::<0x31>(lo, hi),
        );
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_merge_every_length_against_the_scalar_definition() {
        for isa in Isa::available() {
            every_length(isa);
        }
    }

    fn every_length(isa: Isa) {
        for len in 0..70 {
            let src: Vec<f32> = (0..len).map(|i| i as f32 * 0.5 + 3.0).collect();
            // Every `dst` length `src` covers: `2 n - 1 <= len`.
            for n in 0..=(len + 1) / 2 {
                let mut dst = vec![-1f32; n + 2];
                evens(isa, &src, &mut dst[..n]);
                for k in 0..n {
                    assert_eq!(dst[k], src[2 * k], "{isa:?} evens of {len}, n {n}, k {k}");
                }
                assert!(dst[n..].iter().all(|&v| v == -1.0), "evens wrote past n");
                // Adding them back: every even of `src` doubles, the rest stays.
                let mut sum = src.clone();
                add_evens(isa, &dst[..n], &mut sum);
                for (i, (&s, &x)) in sum.iter().zip(&src).enumerate() {
                    let want = if i % 2 == 0 && i / 2 < n { 2.0 * x } else { x };
                    assert_eq!(s, want, "{isa:?} add_evens into {len}, n {n}, i {i}");
                }
            }
        }
        for len in 0..70 {
            let src: Vec<f32> = (0..len).map(|i| i as f32 * 1.5 - 7.0).collect();
            let n = len / 2;
            let (mut even, mut odd) = (vec![0f32; n + 3], vec![0f32; n + 3]);
            split(isa, &src, &mut even, &mut odd);
            for k in 0..n {
                assert_eq!(
                    (even[k], odd[k]),
                    (src[2 * k], src[2 * k + 1]),
                    "{isa:?} len {len}, k {k}"
                );
            }
            assert!(
                even[n..].iter().chain(&odd[n..]).all(|&v| v == 0.0),
                "len {len}: wrote past the pairs"
            );
            let mut back = vec![-1f32; len];
            merge(isa, &even, &odd, &mut back);
            assert_eq!(&back[..2 * n], &src[..2 * n], "len {len}");
            if len % 2 == 1 {
                assert_eq!(
                    back[len - 1],
                    -1.0,
                    "len {len}: wrote the unpaired last element"
                );
            }
        }
    }
}
