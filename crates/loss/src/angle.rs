//! Angle arithmetic on cosines without `acos` where possible: candle 0.11 has no `acos` op, so
//! multiples of an angle are built from its cosine. For an integer multiplier `m` the
//! Chebyshev polynomials give `cos(m t) = T_m(cos t)` and `sin(m t) = sin t * U_{m-1}(cos t)`
//! exactly (DLMF 18.5.1); only a real-valued multiplier needs the angle itself, for which
//! [`acos`] uses Abramowitz & Stegun 4.4.46 (|error| <= 2e-8, below f32 resolution) refined,
//! in f64, by one Newton step so that value and derivative are exact to ~1e-15.
//! Everything is composed of differentiable candle ops, so it runs on every device and
//! autograd gives its gradient.

use candle::{DType, Result, Tensor};

/// Below this argument [`safe_sqrt`] returns 0 with a zero gradient: at exactly `|cos| = 1`
/// the derivative of the square root is infinite and autograd would produce `inf * 0 = NaN`.
pub const SQRT_FLOOR: f64 = 1e-20;

/// `sqrt(t)` for `t >= 0`, exactly 0 (zero gradient) where `t <= SQRT_FLOOR`, so that neither
/// branch of the selection ever holds an infinite derivative.
pub fn safe_sqrt(t: &Tensor) -> Result<Tensor> {
    let root = t.maximum(SQRT_FLOOR)?.sqrt()?;
    t.gt(SQRT_FLOOR)?.where_cond(&root, &t.zeros_like()?)
}

/// Largest integer multiplier evaluated through Chebyshev polynomials.
pub const MAX_CHEBYSHEV: u32 = 16;

/// `sin t = sqrt(clamp(1 - cos^2 t, 0, 1))` for `t` in `[0, pi]`, via [`safe_sqrt`].
pub fn sin_from_cos(cos: &Tensor) -> Result<Tensor> {
    safe_sqrt(&cos.sqr()?.affine(-1.0, 1.0)?.clamp(0.0, 1.0)?)
}

/// `Some(m)` when `m` is a small positive integer that Chebyshev polynomials handle exactly.
pub fn as_integer(m: f64) -> Option<u32> {
    (m.fract() == 0.0 && m >= 1.0 && m <= MAX_CHEBYSHEV as f64).then_some(m as u32)
}

/// Chebyshev polynomials `(T_m(x), U_{m-1}(x))` by the three-term recurrence, `m >= 1`.
pub fn chebyshev(x: &Tensor, m: u32) -> Result<(Tensor, Tensor)> {
    // T_0 = 1, T_1 = x; U_0 = 1, U_1 = 2x; both follow P_{k+1} = 2x P_k - P_{k-1}.
    let (mut t_prev, mut t) = (x.ones_like()?, x.clone());
    let (mut u_prev, mut u) = (x.zeros_like()?, x.ones_like()?);
    for _ in 1..m {
        let t_next = ((x * 2.0)?.mul(&t)? - &t_prev)?;
        let u_next = ((x * 2.0)?.mul(&u)? - &u_prev)?;
        (t_prev, t) = (t, t_next);
        (u_prev, u) = (u, u_next);
    }
    Ok((t, u))
}

/// `acos(x)` for `x` in `[-1, 1]`, differentiable (see the module docs for its accuracy).
pub fn acos(x: &Tensor) -> Result<Tensor> {
    const A: [f64; 8] = [
        1.570_796_305_0,
        -0.214_598_801_6,
        0.088_978_987_4,
        -0.050_174_304_6,
        0.030_891_881_0,
        -0.017_088_125_6,
        0.006_670_090_1,
        -0.001_262_491_1,
    ];
    // acos(y) ~ sqrt(1 - y) p(y) on [0, 1]; acos(-y) = pi - acos(y). Both branches are finite
    // everywhere on [-1, 1], so where_cond's backward never multiplies an infinity by zero.
    let branch = |y: &Tensor| -> Result<Tensor> {
        let mut p = (y.zeros_like()? + A[7])?;
        for a in A[..7].iter().rev() {
            p = (p.mul(y)? + *a)?;
        }
        safe_sqrt(&y.affine(-1.0, 1.0)?.clamp(0.0, 2.0)?)?.mul(&p)
    };
    let pos = branch(x)?;
    let neg = branch(&x.neg()?)?.affine(-1.0, std::f64::consts::PI)?;
    let theta = x.ge(0.0)?.where_cond(&pos, &neg)?;
    if x.dtype() != DType::F64 {
        return Ok(theta);
    }
    // Newton on cos(theta) = x: theta + (cos theta - x) / sin theta. The derivative of the
    // result is -1/sin(theta) up to O(error), i.e. the exact acos derivative.
    let sin = theta.sin()?.clamp(SQRT_FLOOR.sqrt(), 1.0)?;
    theta.add(&(theta.cos()? - x)?.div(&sin)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::Device;

    fn grid(dtype: DType) -> Tensor {
        let v: Vec<f64> = (0..=2000).map(|i| -1.0 + i as f64 / 1000.0).collect();
        Tensor::new(v, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
    }

    #[test]
    fn acos_matches_std_in_f32_and_f64() {
        for (dtype, tol) in [(DType::F64, 1e-12f64), (DType::F32, 5e-7)] {
            let x = grid(dtype);
            let got: Vec<f64> = acos(&x).unwrap().to_dtype(DType::F64).unwrap().to_vec1().unwrap();
            let xs: Vec<f64> = x.to_dtype(DType::F64).unwrap().to_vec1().unwrap();
            for (g, x) in got.iter().zip(&xs) {
                assert!((g - x.acos()).abs() < tol, "{dtype:?} acos({x}) = {g}, want {}", x.acos());
            }
        }
    }

    #[test]
    fn acos_gradient_is_exact_in_f64() {
        let x = candle::Var::from_tensor(&grid(DType::F64).narrow(0, 1, 1999).unwrap()).unwrap();
        let grads = acos(x.as_tensor()).unwrap().sum_all().unwrap().backward().unwrap();
        let g: Vec<f64> = grads.get(&x).unwrap().to_vec1().unwrap();
        let xs: Vec<f64> = x.as_tensor().to_vec1().unwrap();
        for (g, x) in g.iter().zip(&xs) {
            let want = -1.0 / (1.0 - x * x).sqrt();
            assert!((g / want - 1.0).abs() < 1e-9, "d acos({x}) = {g}, want {want}");
        }
    }

    #[test]
    fn chebyshev_gives_multiple_angles() {
        let ts: Vec<f64> = (0..=100).map(|i| i as f64 * std::f64::consts::PI / 100.0).collect();
        let x = Tensor::new(ts.iter().map(|t| t.cos()).collect::<Vec<_>>(), &Device::Cpu).unwrap();
        for m in 1..=5u32 {
            let (t, u) = chebyshev(&x, m).unwrap();
            let (t, u): (Vec<f64>, Vec<f64>) = (t.to_vec1().unwrap(), u.to_vec1().unwrap());
            for (i, th) in ts.iter().enumerate() {
                let mf = m as f64;
                assert!((t[i] - (mf * th).cos()).abs() < 1e-12);
                assert!((u[i] * th.sin() - (mf * th).sin()).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn integer_detection() {
        assert_eq!(as_integer(4.0), Some(4));
        assert_eq!(as_integer(1.5), None);
        assert_eq!(as_integer(0.0), None);
        assert_eq!(as_integer(100.0), None);
    }
}
