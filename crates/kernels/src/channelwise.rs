//! Shared pieces of the fused per-channel CPU ops (batch norm, PReLU): the `N x C x L` view
//! of an activation, contiguous f32 slices out of candle storages, and parallel loops over
//! the `N * C` contiguous runs ("blocks") of `L` values, with per-channel sums in f64.
//!
//! Every block belongs to one channel (`block % C`), so elementwise work splits over blocks
//! without races, and a per-channel reduction is a per-block partial sum followed by a short
//! serial sum over the batch.

use candle::{bail, CpuStorage, Layout, Result};
use rayon::prelude::*;

/// Fewest values one rayon task handles, so that tiny blocks (`L = 1` in BatchNorm1d) are
/// batched instead of paying a task each.
const MIN_TASK_VALUES: usize = 4096;
/// Independent accumulators in [`sum_pairs`]: enough to hide the add latency and let the
/// compiler keep them in vector registers.
const LANES: usize = 8;

/// An activation of shape `N x C x ...` seen as `N x C x L`, `L` the product of the
/// trailing dims (1 for an `N x C` input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Blocks {
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Values per (sample, channel) run.
    pub l: usize,
}

impl Blocks {
    /// The view of `dims`; fails on rank < 2 or an empty tensor.
    pub(crate) fn of(dims: &[usize]) -> Result<Self> {
        let [n, c, rest @ ..] = dims else {
            bail!("expected an N x C x ... tensor, got shape {dims:?}")
        };
        let blocks = Blocks {
            n: *n,
            c: *c,
            l: rest.iter().product(),
        };
        if blocks.n * blocks.c * blocks.l == 0 {
            bail!("expected a non-empty tensor, got shape {dims:?}")
        }
        Ok(blocks)
    }

    /// Values per channel over the whole batch (`N * L`).
    pub(crate) fn per_channel(&self) -> usize {
        self.n * self.l
    }

    /// The channel of block `b` (blocks are ordered `(n, c)`).
    pub(crate) fn channel(&self, b: usize) -> usize {
        b % self.c
    }

    /// The values of block `b` in a contiguous `N x C x L` slice.
    pub(crate) fn run<'a>(&self, data: &'a [f32], b: usize) -> &'a [f32] {
        &data[b * self.l..(b + 1) * self.l]
    }

    fn blocks_per_task(&self) -> usize {
        (MIN_TASK_VALUES / self.l).max(1)
    }

    /// A new `N x C x L` buffer filled in parallel, block `b` holding the `L` values of `f(b)`.
    pub(crate) fn map<I>(&self, f: impl Fn(usize) -> I + Sync) -> Vec<f32>
    where
        I: ExactSizeIterator<Item = f32>,
    {
        crate::fresh::par_collect(self.n * self.c * self.l, self.l, self.blocks_per_task(), f)
    }

    /// Per-channel sums of `K` quantities, `f(b)` giving block `b`'s partial sums.
    pub(crate) fn channel_sums<const K: usize>(
        &self,
        f: impl Fn(usize) -> [f64; K] + Sync + Send,
    ) -> Vec<[f64; K]> {
        let partial: Vec<[f64; K]> = (0..self.n * self.c)
            .into_par_iter()
            .with_min_len(self.blocks_per_task())
            .map(f)
            .collect();
        let mut sums = vec![[0.0; K]; self.c];
        for (b, p) in partial.iter().enumerate() {
            let s = &mut sums[self.channel(b)];
            for (acc, v) in s.iter_mut().zip(p) {
                *acc += v;
            }
        }
        sums
    }
}

/// The contiguous f32 data of a CPU storage, or an error naming the op and the argument.
pub(crate) fn f32_slice<'a>(
    s: &'a CpuStorage,
    l: &Layout,
    op: &str,
    what: &str,
) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = s else {
        bail!("{op}: {what} must be f32")
    };
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{op}: {what} must be contiguous (layout {l:?})"),
    }
}

/// A per-channel f32 argument (weight, bias) of exactly `c` values.
pub(crate) fn channel_slice<'a>(
    s: &'a CpuStorage,
    l: &Layout,
    c: usize,
    op: &str,
    what: &str,
) -> Result<&'a [f32]> {
    let data = f32_slice(s, l, op, what)?;
    if data.len() != c {
        bail!(
            "{op}: {what} has {} values for {c} channels (shape {:?})",
            data.len(),
            l.shape()
        )
    }
    Ok(data)
}

/// `sum_i f(a[i], b[i])` accumulated in f64 with [`LANES`] independent accumulators; `a`
/// and `b` have equal lengths.
pub(crate) fn sum_pairs(a: &[f32], b: &[f32], f: impl Fn(f64, f64) -> f64) -> f64 {
    let mut acc = [0f64; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| f(x as f64, y as f64))
        .sum();
    for (xa, xb) in ca.zip(cb) {
        for j in 0..LANES {
            acc[j] += f(xa[j] as f64, xb[j] as f64);
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// `sum_i f(a[i])` accumulated in f64, as [`sum_pairs`].
pub(crate) fn sum_map(a: &[f32], f: impl Fn(f64) -> f64) -> f64 {
    sum_pairs(a, a, |v, _| f(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_view_and_channel_sums() -> Result<()> {
        let g = Blocks::of(&[2, 3, 2, 2])?;
        assert_eq!((g.n, g.c, g.l, g.per_channel()), (2, 3, 4, 8));
        assert_eq!(Blocks::of(&[5, 7])?.l, 1);
        assert!(Blocks::of(&[5]).is_err());
        assert!(Blocks::of(&[0, 3, 2]).is_err());
        // Block b holds the value b everywhere: channel c sums 4 * (c + c + 3).
        let sums = g.channel_sums(|b| [4.0 * b as f64, 1.0]);
        assert_eq!(sums, vec![[12.0, 2.0], [20.0, 2.0], [28.0, 2.0]]);
        let out = g.map(|b| std::iter::repeat_n(g.channel(b) as f32, g.l));
        assert_eq!(&out[..8], &[0., 0., 0., 0., 1., 1., 1., 1.]);
        assert_eq!(&out[12..16], &[0.; 4]);
        Ok(())
    }

    #[test]
    fn sum_pairs_covers_lanes_and_tail() {
        let a: Vec<f32> = (0..19).map(|i| i as f32).collect();
        let b = vec![2f32; 19];
        assert_eq!(sum_pairs(&a, &b, |x, y| x * y), 2.0 * 171.0);
        assert_eq!(sum_map(&a[..3], |x| x), 3.0);
    }
}
