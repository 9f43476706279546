//! The cuDNN calls behind [`super`]: per-thread handles, the algorithm cache, descriptors,
//! workspaces, and the forward, backward-data and backward-filter passes over raw device
//! buffers of any of the supported element types.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::thread::LocalKey;

use candle::cuda_backend::cudarc::cudnn::{
    sys, ConvBackwardData, ConvBackwardFilter, ConvDescriptor, ConvForward, Cudnn, CudnnDataType,
    FilterDescriptor, TensorDescriptor,
};
use candle::cuda_backend::cudarc::driver::{CudaSlice, CudaView, DeviceRepr};
use candle::cuda_backend::{CudaDType, CudaDevice, CudaStorageSlice, DeviceId};
use candle::{bail, CudaStorage, DType, Layout, Result, WithDType};
use sys::cudnnTensorFormat_t::CUDNN_TENSOR_NCHW;

use super::Geom;

fn dims_i32(d: [usize; 4]) -> [i32; 4] {
    // Geom::new bounds every dimension by i32::MAX.
    d.map(|v| v as i32)
}

/// The element types taken here; cuDNN's compute type is f32 for all of them.
pub(super) trait Elem: WithDType + CudnnDataType + DeviceRepr + CudaDType {}
impl<T: WithDType + CudnnDataType + DeviceRepr + CudaDType> Elem for T {}

thread_local! {
    static HANDLES: RefCell<HashMap<DeviceId, Arc<Cudnn>>> = RefCell::new(HashMap::new());
    static FWD_ALGOS: RefCell<HashMap<Key, sys::cudnnConvolutionFwdAlgo_t>> = RefCell::new(HashMap::new());
    static DATA_ALGOS: RefCell<HashMap<Key, sys::cudnnConvolutionBwdDataAlgo_t>> = RefCell::new(HashMap::new());
    static FILTER_ALGOS: RefCell<HashMap<Key, sys::cudnnConvolutionBwdFilterAlgo_t>> = RefCell::new(HashMap::new());
}

/// What an algorithm choice depends on.
type Key = (DeviceId, DType, sys::cudnnMathType_t, Geom);

fn handle(dev: &CudaDevice) -> Result<Arc<Cudnn>> {
    let id = dev.id();
    if let Some(h) = HANDLES.with(|m| m.borrow().get(&id).cloned()) {
        return Ok(h);
    }
    let h = Cudnn::new(dev.cuda_stream())?;
    HANDLES.with(|m| m.borrow_mut().insert(id, h.clone()));
    Ok(h)
}

fn cached<A: Copy + 'static>(
    cache: &'static LocalKey<RefCell<HashMap<Key, A>>>,
    key: Key,
    pick: impl FnOnce() -> Result<A>,
) -> Result<A> {
    if let Some(a) = cache.with(|m| m.borrow().get(&key).copied()) {
        return Ok(a);
    }
    let a = pick()?;
    cache.with(|m| m.borrow_mut().insert(key, a));
    Ok(a)
}

/// The four descriptors of one convolution of element type `T`, computing in f32.
struct Descs<T> {
    conv: ConvDescriptor<f32>,
    x: TensorDescriptor<T>,
    w: FilterDescriptor<T>,
    y: TensorDescriptor<T>,
    key: Key,
}

impl<T: Elem> Descs<T> {
    fn new(dev: &CudaDevice, g: &Geom) -> Result<Self> {
        use sys::cudnnMathType_t as M;
        let h = handle(dev)?;
        let (s, p) = (g.g.stride as i32, g.g.pad as i32);
        let mut conv = h.create_conv2d::<f32>(
            [p, p],
            [s, s],
            [1, 1],
            sys::cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
        )?;
        let math = match T::DTYPE {
            DType::F32 if g.allow_tf32 => M::CUDNN_DEFAULT_MATH,
            DType::F32 => M::CUDNN_FMA_MATH,
            _ => M::CUDNN_TENSOR_OP_MATH,
        };
        conv.set_math_type(math)?;
        Ok(Descs {
            conv,
            x: h.create_4d_tensor::<T>(CUDNN_TENSOR_NCHW, dims_i32(g.g.x_dims()))?,
            w: h.create_4d_filter::<T>(CUDNN_TENSOR_NCHW, dims_i32(g.g.w_dims()))?,
            y: h.create_4d_tensor::<T>(CUDNN_TENSOR_NCHW, dims_i32(g.g.y_dims()))?,
            key: (dev.id(), T::DTYPE, math, *g),
        })
    }
}

/// Scratch memory for an algorithm; `None` when it needs none.
fn workspace(dev: &CudaDevice, bytes: usize) -> Result<Option<CudaSlice<u8>>> {
    if bytes == 0 {
        return Ok(None);
    }
    // SAFETY: cuDNN treats the workspace as scratch and never reads it before writing.
    Ok(Some(unsafe { dev.alloc::<u8>(bytes)? }))
}

/// One cuDNN pass over two device buffers, producing a fresh one.
pub(super) trait Pass {
    fn run<T: Elem>(
        &self,
        dev: &CudaDevice,
        a: &CudaView<T>,
        b: &CudaView<T>,
    ) -> Result<CudaSlice<T>>;
}

/// Checks nothing about shapes (the callers do); picks the element type from the storage.
pub(super) fn dispatch<P: Pass>(
    p: &P,
    a: &CudaStorage,
    la: &Layout,
    b: &CudaStorage,
    lb: &Layout,
) -> Result<CudaStorage> {
    use CudaStorageSlice as S;
    let dev = &a.device;
    fn view<'a, T>(s: &'a CudaSlice<T>, l: &Layout) -> CudaView<'a, T> {
        s.slice(l.start_offset()..)
    }
    Ok(match (&a.slice, &b.slice) {
        (S::F32(x), S::F32(y)) => {
            CudaStorage::wrap_cuda_slice(p.run(dev, &view(x, la), &view(y, lb))?, dev.clone())
        }
        (S::BF16(x), S::BF16(y)) => {
            CudaStorage::wrap_cuda_slice(p.run(dev, &view(x, la), &view(y, lb))?, dev.clone())
        }
        (S::F16(x), S::F16(y)) => {
            CudaStorage::wrap_cuda_slice(p.run(dev, &view(x, la), &view(y, lb))?, dev.clone())
        }
        _ => bail!("cudnn_conv: needs two f32, bf16 or f16 tensors of the same dtype"),
    })
}

/// `y` from `(x, w)`.
pub(super) struct ForwardPass(pub(super) Geom);

impl Pass for ForwardPass {
    fn run<T: Elem>(
        &self,
        dev: &CudaDevice,
        x: &CudaView<T>,
        w: &CudaView<T>,
    ) -> Result<CudaSlice<T>> {
        use sys::cudnnConvolutionFwdAlgo_t as A;
        let d = Descs::<T>::new(dev, &self.0)?;
        let op = ConvForward {
            conv: &d.conv,
            x: &d.x,
            w: &d.w,
            y: &d.y,
        };
        let algo = cached(&FWD_ALGOS, d.key, || Ok(op.pick_algorithm()?))?;
        // The heuristics' favourite may want more memory than is free (FFT algorithms can):
        // fall back to implicit GEMM, which needs no workspace.
        let (algo, mut ws) = match workspace(dev, op.get_workspace_size(algo)?) {
            Ok(ws) => (algo, ws),
            Err(_) => (
                A::CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
                workspace(
                    dev,
                    op.get_workspace_size(A::CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM)?,
                )?,
            ),
        };
        // SAFETY: beta = 0 makes cuDNN write every output element without reading it.
        let mut y = unsafe { dev.alloc::<T>(self.0.g.y_dims().iter().product())? };
        // SAFETY: the buffers are contiguous NCHW of the descriptors' shapes and type.
        unsafe {
            op.launch(
                algo,
                ws.as_mut(),
                (T::from_f64(1.0), T::from_f64(0.0)),
                x,
                w,
                &mut y,
            )?
        };
        Ok(y)
    }
}

/// `dx` from `(dy, w)`.
pub(super) struct DataPass(pub(super) Geom);

impl Pass for DataPass {
    fn run<T: Elem>(
        &self,
        dev: &CudaDevice,
        dy: &CudaView<T>,
        w: &CudaView<T>,
    ) -> Result<CudaSlice<T>> {
        use sys::cudnnConvolutionBwdDataAlgo_t as A;
        let d = Descs::<T>::new(dev, &self.0)?;
        let op = ConvBackwardData {
            conv: &d.conv,
            dx: &d.x,
            w: &d.w,
            dy: &d.y,
        };
        let algo = cached(&DATA_ALGOS, d.key, || Ok(op.pick_algorithm()?))?;
        let (algo, mut ws) = match workspace(dev, op.get_workspace_size(algo)?) {
            Ok(ws) => (algo, ws),
            Err(_) => (
                A::CUDNN_CONVOLUTION_BWD_DATA_ALGO_0,
                workspace(
                    dev,
                    op.get_workspace_size(A::CUDNN_CONVOLUTION_BWD_DATA_ALGO_0)?,
                )?,
            ),
        };
        // SAFETY: beta = 0 makes cuDNN write every element (zeros where no tap reaches).
        let mut dx = unsafe { dev.alloc::<T>(self.0.g.x_dims().iter().product())? };
        // SAFETY: the buffers are contiguous NCHW of the descriptors' shapes and type.
        unsafe {
            op.launch(
                algo,
                ws.as_mut(),
                (T::from_f64(1.0), T::from_f64(0.0)),
                &mut dx,
                w,
                dy,
            )?
        };
        Ok(dx)
    }
}

/// `dw` from `(x, dy)`.
pub(super) struct FilterPass(pub(super) Geom);

impl Pass for FilterPass {
    fn run<T: Elem>(
        &self,
        dev: &CudaDevice,
        x: &CudaView<T>,
        dy: &CudaView<T>,
    ) -> Result<CudaSlice<T>> {
        use sys::cudnnConvolutionBwdFilterAlgo_t as A;
        let d = Descs::<T>::new(dev, &self.0)?;
        let op = ConvBackwardFilter {
            conv: &d.conv,
            x: &d.x,
            dw: &d.w,
            dy: &d.y,
        };
        let algo = cached(&FILTER_ALGOS, d.key, || Ok(op.pick_algorithm()?))?;
        let (algo, mut ws) = match workspace(dev, op.get_workspace_size(algo)?) {
            Ok(ws) => (algo, ws),
            Err(_) => (
                A::CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0,
                workspace(
                    dev,
                    op.get_workspace_size(A::CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0)?,
                )?,
            ),
        };
        // SAFETY: beta = 0 makes cuDNN write every element without reading it.
        let mut dw = unsafe { dev.alloc::<T>(self.0.g.w_dims().iter().product())? };
        // SAFETY: the buffers are contiguous NCHW of the descriptors' shapes and type.
        unsafe {
            op.launch(
                algo,
                ws.as_mut(),
                (T::from_f64(1.0), T::from_f64(0.0)),
                x,
                &mut dw,
                dy,
            )?
        };
        Ok(dw)
    }
}
