//! Training augmentation: a random horizontal flip, the one InsightFace's `arcface_torch`
//! uses (`RandomHorizontalFlip`), done in place on the HWC u8 buffer. The coin is a pure
//! function of (seed, epoch, image index), so a resumed or re-run epoch flips the same images
//! regardless of thread scheduling.

/// SplitMix64 finalizer (Steele et al., 2014): a cheap, well-mixed 64-bit hash.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A deterministic 64-bit value for (seed, epoch, index); used for per-image random choices.
pub fn image_hash(seed: u64, epoch: u64, index: u64) -> u64 {
    splitmix64(splitmix64(splitmix64(seed) ^ epoch) ^ index)
}

/// Whether image `index` is flipped in `epoch` under `seed` (probability 1/2).
pub fn should_flip(seed: u64, epoch: u64, index: u64) -> bool {
    image_hash(seed, epoch, index) >> 63 == 1
}

/// Mirrors a `width`-pixel-wide HWC image with `channels` channels left-right, in place.
pub fn flip_horizontal(pixels: &mut [u8], width: usize, channels: usize) {
    let row_len = width * channels;
    if row_len == 0 {
        return;
    }
    for row in pixels.chunks_exact_mut(row_len) {
        for x in 0..width / 2 {
            let (l, r) = (x * channels, (width - 1 - x) * channels);
            for c in 0..channels {
                row.swap(l + c, r + c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_rows_and_keeps_channels() {
        // 3 wide, 2 high, 2 channels; pixel (x, y) = [10y + x, 100 + x].
        let mut px: Vec<u8> = (0..2).flat_map(|y| (0..3).flat_map(move |x| [10 * y + x, 100 + x])).collect();
        flip_horizontal(&mut px, 3, 2);
        assert_eq!(px, vec![2, 102, 1, 101, 0, 100, 12, 102, 11, 101, 10, 100]);
        flip_horizontal(&mut px, 3, 2);
        assert_eq!(px[0..2], [0, 100]);
    }

    #[test]
    fn coin_is_deterministic_and_fair() {
        assert_eq!(should_flip(1, 2, 3), should_flip(1, 2, 3));
        let flips = (0..10_000).filter(|&i| should_flip(42, 0, i)).count();
        assert!((4800..5200).contains(&flips), "{flips}");
        let differ = (0..1000).filter(|&i| should_flip(42, 0, i) != should_flip(42, 1, i)).count();
        assert!((400..600).contains(&differ), "{differ}");
    }
}
