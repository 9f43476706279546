//! Seeded initialisation of the class centers. candle's CPU random generator cannot be seeded,
//! so the normal draws come from ChaCha8 (`rand_chacha`) through the Box-Muller transform:
//! the same seed gives the same centers on every machine and device.
//! Reference: InsightFace initialises the centers with `normal(0, 0.01)`.

use candle::{DType, Device, Result, Shape, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Standard deviation of InsightFace's class-center initialisation.
pub const CENTER_STD: f64 = 0.01;

/// A tensor of independent `normal(mean, std)` draws, reproducible from `seed`.
pub fn seeded_normal<S: Into<Shape>>(
    shape: S,
    mean: f64,
    std: f64,
    seed: u64,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let shape = shape.into();
    let n = shape.elem_count();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(n + 1);
    while values.len() < n {
        // 1 - u keeps the logarithm finite (u is in [0, 1)).
        let (u1, u2): (f64, f64) = (1.0 - rng.gen::<f64>(), rng.gen());
        let r = (-2.0 * u1.ln()).sqrt();
        let a = 2.0 * std::f64::consts::PI * u2;
        values.push(mean + std * r * a.cos());
        values.push(mean + std * r * a.sin());
    }
    values.truncate(n);
    Tensor::from_vec(values, shape, &Device::Cpu)?.to_dtype(dtype)?.to_device(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_and_reproducibility() {
        let a = seeded_normal((200, 50), 0.0, CENTER_STD, 7, DType::F64, &Device::Cpu).unwrap();
        let b = seeded_normal((200, 50), 0.0, CENTER_STD, 7, DType::F64, &Device::Cpu).unwrap();
        let c = seeded_normal((200, 50), 0.0, CENTER_STD, 8, DType::F64, &Device::Cpu).unwrap();
        let (a, b, c): (Vec<f64>, Vec<f64>, Vec<f64>) = (
            a.flatten_all().unwrap().to_vec1().unwrap(),
            b.flatten_all().unwrap().to_vec1().unwrap(),
            c.flatten_all().unwrap().to_vec1().unwrap(),
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        let n = a.len() as f64;
        let mean = a.iter().sum::<f64>() / n;
        let var = a.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        // 10000 draws: the standard error of the mean is 1e-4, of the std about 0.7e-4.
        assert!(mean.abs() < 4e-4, "mean {mean}");
        assert!((var.sqrt() - CENTER_STD).abs() < 3e-4, "std {}", var.sqrt());
    }
}
