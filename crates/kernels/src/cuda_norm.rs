//! Fused CUDA kernels for BatchNorm (training) and PReLU (feature `cuda`; source in
//! `cuda_norm/kernels.cu`, compiled to PTX by `build.rs`).
//!
//! The closed-form path (`crate::closed_grad`) already avoids autograd through BatchNorm
//! and PReLU, but still runs each of them as several generic candle kernels, where every
//! broadcast pays per-element index arithmetic. These kernels give each pass one kernel with
//! one thread block per `(n, c)` row: BatchNorm's statistics in two reads, its output in one
//! pass, its backward in three; PReLU forward in one pass, backward in two. All arithmetic is
//! f32, on f32 or bf16 tensors (so bf16 activations need no casts).
//!
//! **Opt-in ([`crate::KernelOptions::cuda_norm_kernels`]) until a GPU run has checked them**:
//! `tests/cuda_norm.rs` compares them with the CPU path, and `scripts/gpu_check.sh` runs that
//! test and times the training step with and without them.

use candle::backend::BackendStorage;
use candle::cuda_backend::cudarc::driver::{
    CudaFunction, CudaSlice, CudaStream, CudaView, DeviceRepr, LaunchConfig, PushKernelArg,
};
use candle::cuda_backend::{CudaDType, WrapErr};
use candle::{bail, CpuStorage, CudaDevice, CudaStorage, CustomOp1, DType, Layout, Result, Shape, Storage, Tensor};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/cuda_norm.ptx"));
const MODULE: &str = "arcface_cuda_norm";

/// Whether `x` can go through these kernels: f32 or bf16 on CUDA, `N x C x ...`, and sizes
/// within the kernels' 32-bit row length and channel count.
pub(crate) fn supports(x: &Tensor) -> bool {
    x.device().is_cuda()
        && matches!(x.dtype(), DType::F32 | DType::BF16)
        && x.rank() >= 2
        && x.elem_count() > 0
        && x.elem_count() / x.dims()[0].max(1) / x.dims()[1].max(1) <= u32::MAX as usize
}

/// Row sums of `x - pivot[c]` and of its square: `2 x (N * C)` f32.
pub(crate) fn row_moments(x: &Tensor, pivot: &Tensor) -> Result<Tensor> {
    RowKernel::new("row_moments", x, &[], &[pivot], Out::Rows(2))?.run(x)
}

/// `x * scale[c] + shift[c]` in `x`'s dtype, as a kernel to run on `x`'s storage
/// ([`RowKernel::apply`]).
pub(crate) fn affine_kernel(x: &Tensor, scale: &Tensor, shift: &Tensor) -> Result<RowKernel> {
    RowKernel::new("affine", x, &[], &[scale, shift], Out::Like)
}

/// PReLU forward with f32 slopes `w`, as a kernel to run on `x`'s storage.
pub(crate) fn prelu_fwd_kernel(x: &Tensor, w: &Tensor) -> Result<RowKernel> {
    RowKernel::new("prelu_fwd", x, &[], &[w], Out::Like)
}

/// Row sums of `(g - gmean[c]) * (x - mean[c])`: `1 x (N * C)` f32.
pub(crate) fn bn_dot(g: &Tensor, x: &Tensor, gmean: &Tensor, mean: &Tensor) -> Result<Tensor> {
    RowKernel::new("bn_dot", g, &[x], &[gmean, mean], Out::Rows(1))?.run(g)
}

/// `k[c] * ((g - gmean[c]) - (x - mean[c]) * q[c])`, in `g`'s dtype.
pub(crate) fn bn_dx(g: &Tensor, x: &Tensor, mean: &Tensor, k: &Tensor, gmean: &Tensor, q: &Tensor) -> Result<Tensor> {
    RowKernel::new("bn_dx", g, &[x], &[mean, k, gmean, q], Out::Like)?.run(g)
}

/// PReLU input gradient with f32 slopes `w`.
pub(crate) fn prelu_dx(g: &Tensor, x: &Tensor, w: &Tensor) -> Result<Tensor> {
    RowKernel::new("prelu_dx", g, &[x], &[w], Out::Like)?.run(g)
}

/// Row sums of `g * x` over non-positive `x`: `1 x (N * C)` f32.
pub(crate) fn prelu_dw_rows(g: &Tensor, x: &Tensor) -> Result<Tensor> {
    RowKernel::new("prelu_dw_rows", g, &[x], &[], Out::Rows(1))?.run(g)
}

/// What a kernel writes.
#[derive(Clone, Copy)]
enum Out {
    /// A tensor of the first input's shape and dtype.
    Like,
    /// `k` f32 sums per row, as `k x rows`.
    Rows(usize),
}

/// One launch over the rows of contiguous `N x C x L` tensors. Arguments in the kernel's
/// order: the first big input (the op's own argument), `more` big inputs, `vecs` (f32
/// `C`-vectors), the output, `L`, `C`.
pub(crate) struct RowKernel {
    name: &'static str,
    more: Vec<Tensor>,
    vecs: Vec<Tensor>,
    out: Out,
    rows: usize,
    l: u32,
    c: u32,
}

impl RowKernel {
    fn new(name: &'static str, first: &Tensor, more: &[&Tensor], vecs: &[&Tensor], out: Out) -> Result<Self> {
        if !supports(first) {
            bail!(
                "cuda_norm::{name}: needs an f32 or bf16 N x C x ... tensor on CUDA, got {:?} {:?}",
                first.dtype(),
                first.shape()
            )
        }
        let (n, c) = (first.dim(0)?, first.dim(1)?);
        for t in more {
            if t.shape() != first.shape() || t.dtype() != first.dtype() {
                bail!(
                    "cuda_norm::{name}: inputs differ: {:?} {:?} and {:?} {:?}",
                    first.dtype(),
                    first.shape(),
                    t.dtype(),
                    t.shape()
                )
            }
        }
        for v in vecs {
            if v.dims() != [c] || v.dtype() != DType::F32 {
                bail!(
                    "cuda_norm::{name}: per-channel vectors must be {c} f32 values, got {:?} {:?}",
                    v.dtype(),
                    v.shape()
                )
            }
        }
        Ok(Self {
            name,
            more: more.iter().map(|t| t.contiguous()).collect::<Result<_>>()?,
            vecs: vecs.iter().map(|t| t.contiguous()).collect::<Result<_>>()?,
            out,
            rows: n * c,
            l: (first.elem_count() / (n * c)) as u32,
            c: c as u32,
        })
    }

    fn run(self, first: &Tensor) -> Result<Tensor> {
        first.contiguous()?.apply_op1_no_bwd(&self)
    }

    /// Runs on the storage of the tensor this kernel was made for (an `Out::Like` kernel).
    pub(crate) fn apply(&self, s: &CudaStorage, l: &Layout) -> Result<CudaStorage> {
        if l.shape().elem_count() != self.rows * self.l as usize {
            bail!("cuda_norm::{}: made for {} rows of {}, applied to {:?}", self.name, self.rows, self.l, l.shape())
        }
        Ok(self.cuda_fwd(s, l)?.0)
    }

    /// Runs the kernel `{name}_{suffix}` with `x` (of layout `l`) as the first input.
    fn launch<T: CudaDType + DeviceRepr>(
        &self,
        dev: &CudaDevice,
        x: &CudaSlice<T>,
        l: &Layout,
        suffix: &str,
    ) -> Result<CudaStorage> {
        let func = dev.get_or_load_custom_func(&format!("{}_{suffix}", self.name), MODULE, PTX)?.into_cuda_function();
        let stream = dev.cuda_stream();
        let Some((start, _)) = l.contiguous_offsets() else {
            bail!("cuda_norm::{}: input not contiguous ({l:?})", self.name)
        };
        let first: CudaView<T> = x.slice(start..);
        let guards: Vec<_> = self.more.iter().chain(&self.vecs).map(|t| t.storage_and_layout()).collect();
        let mut more: Vec<CudaView<T>> = Vec::new();
        let mut vecs: Vec<CudaView<f32>> = Vec::new();
        for (i, (storage, layout)) in guards.iter().enumerate() {
            let Storage::Cuda(cs) = &**storage else { bail!("cuda_norm::{}: an input is not on CUDA", self.name) };
            if i < self.more.len() {
                more.push(cs.as_cuda_slice::<T>()?.slice(layout.start_offset()..));
            } else {
                vecs.push(cs.as_cuda_slice::<f32>()?.slice(layout.start_offset()..));
            }
        }
        let threads = (self.l as usize).next_power_of_two().clamp(32, 256) as u32;
        let cfg = LaunchConfig { grid_dim: (self.rows as u32, 1, 1), block_dim: (threads, 1, 1), shared_mem_bytes: 0 };
        let args = Args { first: &first, more: &more, vecs: &vecs, l: self.l, c: self.c };
        match self.out {
            Out::Like => {
                // SAFETY: the kernel writes every element before anything reads it.
                let out = unsafe { dev.alloc::<T>(self.rows * self.l as usize)? };
                args.launch(&stream, &func, &out, cfg)?;
                Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()))
            }
            Out::Rows(k) => {
                // SAFETY: thread 0 of each block writes its row's k sums.
                let out = unsafe { dev.alloc::<f32>(k * self.rows)? };
                args.launch(&stream, &func, &out, cfg)?;
                Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()))
            }
        }
    }
}

/// A kernel's arguments other than its output, in the order of kernels.cu's signatures.
struct Args<'a, 'b, T> {
    first: &'a CudaView<'b, T>,
    more: &'a [CudaView<'b, T>],
    vecs: &'a [CudaView<'b, f32>],
    l: u32,
    c: u32,
}

impl<T> Args<'_, '_, T> {
    /// Launches `func(first, more.., vecs.., out, l, c)`.
    fn launch<O>(&self, stream: &CudaStream, func: &CudaFunction, out: &CudaSlice<O>, cfg: LaunchConfig) -> Result<()> {
        let mut b = stream.launch_builder(func);
        b.arg(self.first);
        for m in self.more {
            b.arg(m);
        }
        for v in self.vecs {
            b.arg(v);
        }
        b.arg(out);
        b.arg(&self.l);
        b.arg(&self.c);
        // SAFETY: argument types and count match the kernel's signature in kernels.cu.
        unsafe { b.launch(cfg) }.w()?;
        Ok(())
    }
}

impl CustomOp1 for RowKernel {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        bail!("cuda_norm::{} runs on CUDA only", self.name)
    }

    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> Result<(CudaStorage, Shape)> {
        use candle::cuda_backend::CudaStorageSlice as S;
        let storage = match &s.slice {
            S::F32(x) => self.launch(s.device(), x, l, "f32")?,
            S::BF16(x) => self.launch(s.device(), x, l, "bf16")?,
            _ => bail!("cuda_norm::{}: unsupported dtype {:?}", self.name, s.dtype()),
        };
        let shape = match self.out {
            Out::Like => l.shape().clone(),
            Out::Rows(k) => Shape::from((k, self.rows)),
        };
        Ok((storage, shape))
    }
}
