// Fused CUDA kernels for BatchNorm (training) and PReLU over contiguous N x C x L tensors,
// used by crates/backbone/src/cuda_norm.rs (feature `cuda`). build.rs compiles this file to
// PTX with nvcc.
//
// Layout: one thread block per row r = n * C + c (L contiguous values of channel c), so the
// channel is r % C once per block and no per-element index arithmetic is needed. T is float
// or __nv_bfloat16; all arithmetic and every sum are in float. Per-channel vectors are
// float. Row sums are written per row (N * C floats); the caller sums them over N.
//
// Reference for the formulas: Ioffe & Szegedy 2015 (BatchNorm), He et al. 2015 (PReLU); the
// same closed forms as crates/backbone/src/batch_norm.rs (BnGrad) and prelu.rs (PReluGrad).

#include <cuda_bf16.h>
#include <stdint.h>

__device__ __forceinline__ float ld(const float* p, size_t i) { return p[i]; }
__device__ __forceinline__ float ld(const __nv_bfloat16* p, size_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void st(float* p, size_t i, float v) { p[i] = v; }
__device__ __forceinline__ void st(__nv_bfloat16* p, size_t i, float v) { p[i] = __float2bfloat16(v); }

// Sum of v over the block (blockDim.x a multiple of 32, at most 1024); valid in thread 0.
__device__ float block_sum(float v) {
  __shared__ float warp_sums[32];
  __syncthreads();  // warp_sums may still be read by a previous call
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  const int warps = blockDim.x >> 5;
  v = (int)threadIdx.x < warps ? warp_sums[threadIdx.x] : 0.f;
  if (warp == 0)
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// out[r] = sum(x - pivot[c]) and out[R + r] = sum((x - pivot[c])^2) for each row r of R.
// pivot may be null (then 0).
template <typename T>
__device__ void row_moments(const T* x, const float* pivot, float* out, uint32_t L, uint32_t C) {
  const size_t r = blockIdx.x, R = gridDim.x;
  const float p = pivot ? pivot[r % C] : 0.f;
  const T* row = x + r * L;
  float s1 = 0.f, s2 = 0.f;
  for (uint32_t j = threadIdx.x; j < L; j += blockDim.x) {
    const float d = ld(row, j) - p;
    s1 += d;
    s2 += d * d;
  }
  s1 = block_sum(s1);
  s2 = block_sum(s2);
  if (threadIdx.x == 0) {
    out[r] = s1;
    out[R + r] = s2;
  }
}

// y = x * scale[c] + shift[c].
template <typename T>
__device__ void affine(const T* x, const float* scale, const float* shift, T* y, uint32_t L, uint32_t C) {
  const size_t r = blockIdx.x;
  const float a = scale[r % C], b = shift[r % C];
  for (uint32_t j = threadIdx.x; j < L; j += blockDim.x) st(y, r * L + j, ld(x, r * L + j) * a + b);
}

// out[r] = sum((g - gmean[c]) * (x - mean[c])): the BatchNorm weight gradient before the
// factor inv_std, centred on both sides so that large means do not cancel.
template <typename T>
__device__ void bn_dot(const T* g, const T* x, const float* gmean, const float* mean, float* out, uint32_t L,
                       uint32_t C) {
  const size_t r = blockIdx.x;
  const float gm = gmean[r % C], m = mean[r % C];
  float s = 0.f;
  for (uint32_t j = threadIdx.x; j < L; j += blockDim.x) s += (ld(g, r * L + j) - gm) * (ld(x, r * L + j) - m);
  s = block_sum(s);
  if (threadIdx.x == 0) out[r] = s;
}

// dx = k[c] * ((g - gmean[c]) - (x - mean[c]) * q[c]), with k = w * inv_std,
// q = inv_std^2 * sum((g - gmean) * (x - mean)) / M.
template <typename T>
__device__ void bn_dx(const T* g, const T* x, const float* mean, const float* k, const float* gmean, const float* q,
                      T* dx, uint32_t L, uint32_t C) {
  const size_t r = blockIdx.x;
  const uint32_t c = r % C;
  const float m = mean[c], kc = k[c], gm = gmean[c], qc = q[c];
  for (uint32_t j = threadIdx.x; j < L; j += blockDim.x) {
    const size_t i = r * L + j;
    st(dx, i, kc * ((ld(g, i) - gm) - (ld(x, i) - m) * qc));
  }
}

// y = x where x > 0, w[c] * x elsewhere.
template <typename T>
__device__ void prelu_fwd(const T* x, const float* w, T* y, uint32_t L, uint32_t C) {
  const size_t r = blockIdx.x;
  const float a = w[r % C];
  for (uint32_t j = threadIdx.x; j < L; j += blockDim.x) {
    const float v = ld(x, r * L + j);
    st(y, r * L + j, v > 0.f ? v : a * v);
  }
}

// dx = g where x > 0, w[c] * g elsewhere (PyTorch's convention at 0).
template <typename T>
__device__ void prelu_dx(const T* g, const T* x, const float* w, T* dx, uint32_t L, uint32_t C) {
  const size_t r = blockIdx.x;
  const float a = w[r % C];
  for (uint32_t j = threadIdx.x; j < L; j += blockDim.x) {
    const size_t i = r * L + j;
    const float gv = ld(g, i);
    st(dx, i, ld(x, i) > 0.f ? gv : a * gv);
  }
}

// out[r] = sum(g * x) over the row's non-positive x: the slope's gradient per row.
template <typename T>
__device__ void prelu_dw_rows(const T* g, const T* x, float* out, uint32_t L) {
  const size_t r = blockIdx.x;
  float s = 0.f;
  for (uint32_t j = threadIdx.x; j < L; j += blockDim.x) {
    const float v = ld(x, r * L + j);
    if (!(v > 0.f)) s += ld(g, r * L + j) * v;
  }
  s = block_sum(s);
  if (threadIdx.x == 0) out[r] = s;
}

#define INSTANTIATE(T, SUFFIX)                                                                              \
  extern "C" __global__ void row_moments_##SUFFIX(const T* x, const float* pivot, float* out, uint32_t L,  \
                                                  uint32_t C) {                                             \
    row_moments<T>(x, pivot, out, L, C);                                                                    \
  }                                                                                                         \
  extern "C" __global__ void affine_##SUFFIX(const T* x, const float* scale, const float* shift, T* y,      \
                                             uint32_t L, uint32_t C) {                                      \
    affine<T>(x, scale, shift, y, L, C);                                                                    \
  }                                                                                                         \
  extern "C" __global__ void bn_dot_##SUFFIX(const T* g, const T* x, const float* gmean, const float* mean, \
                                             float* out, uint32_t L, uint32_t C) {                          \
    bn_dot<T>(g, x, gmean, mean, out, L, C);                                                                \
  }                                                                                                         \
  extern "C" __global__ void bn_dx_##SUFFIX(const T* g, const T* x, const float* mean, const float* k,      \
                                            const float* gmean, const float* q, T* dx, uint32_t L,          \
                                            uint32_t C) {                                                   \
    bn_dx<T>(g, x, mean, k, gmean, q, dx, L, C);                                                            \
  }                                                                                                         \
  extern "C" __global__ void prelu_fwd_##SUFFIX(const T* x, const float* w, T* y, uint32_t L, uint32_t C) { \
    prelu_fwd<T>(x, w, y, L, C);                                                                            \
  }                                                                                                         \
  extern "C" __global__ void prelu_dx_##SUFFIX(const T* g, const T* x, const float* w, T* dx, uint32_t L,   \
                                               uint32_t C) {                                                \
    prelu_dx<T>(g, x, w, dx, L, C);                                                                         \
  }                                                                                                         \
  extern "C" __global__ void prelu_dw_rows_##SUFFIX(const T* g, const T* x, float* out, uint32_t L,         \
                                                    uint32_t C) {                                           \
    prelu_dw_rows<T>(g, x, out, L);                                                                         \
  }

INSTANTIATE(float, f32)
INSTANTIATE(__nv_bfloat16, bf16)
