//! Scoring verification pairs from embeddings, the one scorer behind both the final
//! evaluation (`eval_run`) and training's per-epoch validation, so that the two report the
//! same numbers for the same embeddings.
//!
//! Score: cosine similarity of the two rows (re-normalized, computed in f32 as InsightFace's
//! numpy code does). Folds: a pair list's own folds when it has several (`pairs.txt`);
//! otherwise (`pairsDevTest.txt`: 500 same pairs then 500 different ones; a single `view2`
//! fold) 10 folds per class in file order, so every fold holds both classes.

use arcface_data::IndexPair;
use candle::{Device, Tensor};

use crate::embed::cosine_rows;
use crate::error::Result;

/// Cosine similarity of each pair over the rows of `emb` (N x D, any device).
pub fn score_pairs(emb: &Tensor, pairs: &[IndexPair]) -> Result<Vec<f64>> {
    let index = |f: fn(&IndexPair) -> usize| {
        Tensor::new(
            pairs.iter().map(|p| f(p) as u32).collect::<Vec<_>>(),
            &Device::Cpu,
        )
    };
    let emb = emb.to_device(&Device::Cpu)?.to_dtype(candle::DType::F32)?;
    let a = emb.index_select(&index(|p| p.a)?, 0)?;
    let b = emb.index_select(&index(|p| p.b)?, 0)?;
    cosine_rows(&a, &b)
}

/// The folds of `pairs`: their own when there are several, else [`balanced_folds`] (10).
pub fn pair_folds(pairs: &[IndexPair]) -> Vec<usize> {
    let own: Vec<usize> = pairs.iter().map(|p| p.fold).collect();
    if own.iter().any(|&f| f != own[0]) {
        own
    } else {
        balanced_folds(&pairs.iter().map(|p| p.same).collect::<Vec<_>>(), 10)
    }
}

/// Splits pairs into `k` folds per class in file order (fold = rank within class * k / count).
pub fn balanced_folds(same: &[bool], k: usize) -> Vec<usize> {
    let n_same = same.iter().filter(|&&s| s).count();
    let n_diff = same.len() - n_same;
    let (mut i_same, mut i_diff) = (0, 0);
    same.iter()
        .map(|&s| {
            let (i, n) = if s {
                (&mut i_same, n_same)
            } else {
                (&mut i_diff, n_diff)
            };
            let f = *i * k / n.max(1);
            *i += 1;
            f
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(a: usize, b: usize, same: bool, fold: usize) -> IndexPair {
        IndexPair { a, b, same, fold }
    }

    #[test]
    fn balanced_folds_split_each_class() {
        let same: Vec<bool> = (0..40).map(|i| i < 20).collect();
        let f = balanced_folds(&same, 10);
        assert_eq!(&f[..4], &[0, 0, 1, 1]);
        assert_eq!(&f[20..24], &[0, 0, 1, 1]);
        assert_eq!(f[39], 9);
    }

    #[test]
    fn own_folds_only_when_there_are_several() {
        let several = [pair(0, 1, true, 0), pair(1, 2, false, 1)];
        assert_eq!(pair_folds(&several), vec![0, 1]);
        let one: Vec<IndexPair> = (0..20).map(|i| pair(0, 1, i < 10, 4)).collect();
        let f = pair_folds(&one);
        assert_eq!((&f[..3], f[10]), (&[0, 1, 2][..], 0));
    }

    #[test]
    fn cosine_scores_of_pairs() {
        let emb = Tensor::new(&[[1f32, 0.0], [0.0, 2.0], [3.0, 3.0]], &Device::Cpu).unwrap();
        let s = score_pairs(&emb, &[pair(0, 1, false, 0), pair(0, 2, true, 0)]).unwrap();
        assert!(
            s[0].abs() < 1e-7 && (s[1] - 0.5f64.sqrt()).abs() < 1e-6,
            "{s:?}"
        );
    }
}
