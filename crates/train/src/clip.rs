//! Gradient-norm clipping over all parameters, as `torch.nn.utils.clip_grad_norm_`.
//!
//! The global L2 norm is the norm of the per-tensor norms; when it exceeds `max_norm` every
//! gradient is scaled by `max_norm / (norm + 1e-6)` (PyTorch's epsilon).

use candle::backprop::GradStore;
use candle::Var;

use crate::error::Result;

/// Clips the gradients of `vars` in place and returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> Result<f64> {
    let mut sq = 0f64;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            let s = g
                .to_dtype(candle::DType::F32)?
                .sqr()?
                .sum_all()?
                .to_scalar::<f32>()?;
            sq += s as f64;
        }
    }
    let norm = sq.sqrt();
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        for v in vars {
            if let Some(g) = grads.get(v.as_tensor()) {
                let scaled = (g * coef)?;
                grads.insert(v.as_tensor(), scaled);
            }
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::Device;

    fn grads_of(a: &Var, b: &Var) -> GradStore {
        // d/dx of sum(c * x) is c: gradients [3, 0] and [4] -> global norm 5.
        let la = (a.as_tensor() * 3.0)
            .unwrap()
            .narrow(0, 0, 1)
            .unwrap()
            .sum_all()
            .unwrap();
        let lb = (b.as_tensor() * 4.0).unwrap().sum_all().unwrap();
        (la + lb).unwrap().backward().unwrap()
    }

    #[test]
    fn clips_to_max_norm_and_reports_total() {
        let a = Var::from_slice(&[1f32, 2.0], 2, &Device::Cpu).unwrap();
        let b = Var::from_slice(&[1f32], 1, &Device::Cpu).unwrap();
        let mut g = grads_of(&a, &b);
        let norm = clip_grad_norm(&mut g, &[a.clone(), b.clone()], 1.0).unwrap();
        assert!((norm - 5.0).abs() < 1e-6);
        let ga = g.get(a.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        let gb = g.get(b.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        let c = 1.0 / (5.0 + 1e-6);
        assert!((ga[0] as f64 - 3.0 * c).abs() < 1e-6 && ga[1] == 0.0);
        assert!((gb[0] as f64 - 4.0 * c).abs() < 1e-6);
    }

    #[test]
    fn leaves_small_gradients_alone() {
        let a = Var::from_slice(&[1f32, 2.0], 2, &Device::Cpu).unwrap();
        let b = Var::from_slice(&[1f32], 1, &Device::Cpu).unwrap();
        let mut g = grads_of(&a, &b);
        clip_grad_norm(&mut g, &[a.clone(), b.clone()], 10.0).unwrap();
        assert_eq!(
            g.get(b.as_tensor()).unwrap().to_vec1::<f32>().unwrap(),
            vec![4.0]
        );
    }
}
