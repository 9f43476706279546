//! Element-wise ops of an eval-mode forward on rayon's threads: a BatchNorm as a per-channel
//! affine `x * scale[c] + shift[c]`, and the residual add.
//!
//! candle splits element-wise ops on large CPU tensors over a thread pool of its own whose
//! workers spin after each op, taking the cores from rayon's workers, which run the
//! convolutions next (r50 at batch 1 on 2 cores: 77 ms per forward, 69 ms with that spinning
//! turned off). These run on rayon like the convolutions; without gradients, as the frozen
//! network ([`crate::FrozenConv`]) they serve has none. Off the CPU, or for other dtypes, they
//! are candle's ops.

use candle::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};

use crate::channelwise::{channel_slice, f32_slice};
use crate::fresh::par_collect;

const OP: &str = "eval-ops";

/// Below this many elements one task does the whole op.
const PARALLEL_MIN: usize = 1 << 15;

/// The whole op in one task below [`PARALLEL_MIN`] elements, else as many as rayon likes.
fn min_chunks_per_task(len: usize) -> usize {
    if len < PARALLEL_MIN {
        usize::MAX
    } else {
        1
    }
}

/// `x * scale[c] + shift[c]` over dim 1 of an `N x C x ...` tensor (`scale`, `shift`: `C`
/// values each), detached.
pub fn channel_affine(x: &Tensor, scale: &Tensor, shift: &Tensor) -> Result<Tensor> {
    let c = match x.dims() {
        [_, c, ..] => *c,
        d => candle::bail!("{OP}: channel affine needs N x C x ... input, got {d:?}"),
    };
    for (t, what) in [(scale, "scale"), (shift, "shift")] {
        if t.dims() != [c] {
            candle::bail!("{OP}: {what} has shape {:?}, expected [{c}]", t.dims())
        }
    }
    let fast = [x, scale, shift].iter().all(|t| t.device().is_cpu() && t.dtype() == DType::F32);
    if !fast {
        let mut s = vec![1; x.rank()];
        s[1] = c;
        let (scale, shift) = (scale.to_dtype(x.dtype())?.reshape(s.as_slice())?, shift.to_dtype(x.dtype())?.reshape(s.as_slice())?);
        return x.detach().broadcast_mul(&scale)?.broadcast_add(&shift);
    }
    x.contiguous()?.apply_op3_no_bwd(&scale.contiguous()?, &shift.contiguous()?, &ChannelAffine)
}

/// `a + b` for tensors of one shape, detached.
pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.dims() != b.dims() {
        candle::bail!("{OP}: add of shapes {:?} and {:?}", a.dims(), b.dims())
    }
    let fast = [a, b].iter().all(|t| t.device().is_cpu() && t.dtype() == DType::F32);
    if !fast {
        return a.detach() + b.detach();
    }
    a.contiguous()?.apply_op2_no_bwd(&b.contiguous()?, &Add)
}

struct ChannelAffine;

impl CustomOp3 for ChannelAffine {
    fn name(&self) -> &'static str {
        "channel-affine"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dims = l1.dims();
        let c = dims[1];
        let plane: usize = dims[2..].iter().product();
        let x = f32_slice(s1, l1, OP, "input")?;
        let scale = channel_slice(s2, l2, c, OP, "scale")?;
        let shift = channel_slice(s3, l3, c, OP, "shift")?;
        let plane = plane.max(1);
        let y = par_collect(x.len(), plane, min_chunks_per_task(x.len()), |i| {
            let (a, b) = (scale[i % c], shift[i % c]);
            x[i * plane..(i + 1) * plane].iter().map(move |&v| v * a + b)
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }
}

struct Add;

impl CustomOp2 for Add {
    fn name(&self) -> &'static str {
        "eval-add"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (a, b) = (f32_slice(s1, l1, OP, "lhs")?, f32_slice(s2, l2, OP, "rhs")?);
        const CHUNK: usize = 1 << 14;
        let y = par_collect(a.len(), CHUNK, min_chunks_per_task(a.len()), |i| {
            let range = i * CHUNK..((i + 1) * CHUNK).min(a.len());
            a[range.clone()].iter().zip(&b[range]).map(|(x, y)| x + y)
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::Device;

    fn ramp(dims: &[usize]) -> Result<Tensor> {
        let n: usize = dims.iter().product();
        Tensor::arange(0f32, n as f32, &Device::Cpu)?.affine(0.01, -3.0)?.reshape(dims)
    }

    /// Both ops against candle's broadcast arithmetic, below and above the parallel size.
    #[test]
    fn match_candle_ops() -> Result<()> {
        for dims in [vec![2, 3, 4, 5], vec![1, 64, 32, 32], vec![3, 7]] {
            let x = ramp(&dims)?;
            let c = dims[1];
            let scale = Tensor::arange(0f32, c as f32, &Device::Cpu)?.affine(0.5, -1.0)?;
            let shift = Tensor::arange(0f32, c as f32, &Device::Cpu)?.affine(-0.25, 2.0)?;
            let mut s = vec![1; dims.len()];
            s[1] = c;
            let want = x.broadcast_mul(&scale.reshape(s.as_slice())?)?.broadcast_add(&shift.reshape(s.as_slice())?)?;
            let got = channel_affine(&x, &scale, &shift)?;
            assert_eq!(got.flatten_all()?.to_vec1::<f32>()?, want.flatten_all()?.to_vec1::<f32>()?, "{dims:?}");
            let b = x.affine(-2.0, 1.0)?;
            assert_eq!(add(&x, &b)?.flatten_all()?.to_vec1::<f32>()?, (&x + &b)?.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(())
    }

    #[test]
    fn shape_mismatches_are_errors() -> Result<()> {
        let x = ramp(&[1, 3, 2, 2])?;
        let three = Tensor::ones(3, DType::F32, &Device::Cpu)?;
        let four = Tensor::ones(4, DType::F32, &Device::Cpu)?;
        assert!(channel_affine(&x, &four, &three).is_err());
        assert!(channel_affine(&x, &three, &four).is_err());
        assert!(add(&x, &ramp(&[1, 3, 2, 3])?).is_err());
        Ok(())
    }
}
