// SwiGLU kernels: one block per token row for the fused [gate | up] layout, a flat
// grid-stride loop for separate inputs; 16-byte vectors where aligned. Both are launched as
// programmatic dependents (common.cuh) that release the next kernel at once.
#include "kernels/cuda/activation.cuh"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/common.cuh"

namespace strata::cuda {
namespace {

// gate_up: [num_tokens, 2 * dim], out: [num_tokens, dim]. N > 1 needs dim % N == 0 and
// 16-byte aligned gate_up and out.
template <class T, int N>
__global__ void silu_and_mul_kernel(const T* __restrict__ gate_up, T* __restrict__ out, int num_tokens, int dim) {
  launch_dependent_grids();
  wait_for_prior_grid();
  for (int t = blockIdx.x; t < num_tokens; t += gridDim.x) {
    const T* gate = gate_up + static_cast<int64_t>(t) * 2 * dim;
    const T* up = gate + dim;
    T* out_row = out + static_cast<int64_t>(t) * dim;
    for (int i = threadIdx.x * N; i < dim; i += blockDim.x * N) {
      const Vec<T, N> g = load_vec<N>(gate + i);
      const Vec<T, N> u = load_vec<N>(up + i);
      Vec<T, N> o;
#pragma unroll
      for (int j = 0; j < N; ++j) o.v[j] = silu_mul_element(g.v[j], u.v[j]);
      store_vec<N>(out_row + i, o);
    }
  }
}

// gate, up, out: [n]; out may alias gate or up (each element is read before it is written by
// the same thread). N > 1 needs 16-byte aligned pointers; the n % N tail goes element-wise.
template <class T, int N>
__global__ void silu_mul_kernel(const T* gate, const T* up, T* out, int64_t n) {
  launch_dependent_grids();
  wait_for_prior_grid();
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t num_vecs = n / N;
  for (int64_t v = first; v < num_vecs; v += stride) {
    const Vec<T, N> g = load_vec<N>(gate + v * N);
    const Vec<T, N> u = load_vec<N>(up + v * N);
    Vec<T, N> o;
#pragma unroll
    for (int j = 0; j < N; ++j) o.v[j] = silu_mul_element(g.v[j], u.v[j]);
    store_vec<N>(out + v * N, o);
  }
  for (int64_t i = num_vecs * N + first; i < n; i += stride) out[i] = silu_mul_element(gate[i], up[i]);
}

}  // namespace

LaunchStatus silu_and_mul(const void* gate_up, void* out, int num_tokens, int dim, DType dtype, cudaStream_t stream) {
  constexpr const char* kKernel = "silu_and_mul_kernel";
  const ShapeArgs shape = {{"num_tokens", num_tokens}, {"dim", dim}};
  if (num_tokens < 0 || dim <= 0) return invalid_argument(kKernel, dtype, shape, "need num_tokens >= 0 and dim > 0");
  if (num_tokens == 0) return {};
  return dispatch_dtype(dtype, [&](auto tag) -> LaunchStatus {
    using T = typename decltype(tag)::type;
    constexpr int kN = kVecWidth<T>;
    const T* in_t = static_cast<const T*>(gate_up);
    T* out_t = static_cast<T*>(out);
    const dim3 grid(grid_for(num_tokens));
    if (dim % kN == 0 && is_aligned_16(in_t) && is_aligned_16(out_t)) {
      (void)launch_pdl(silu_and_mul_kernel<T, kN>, grid, threads_for(dim / kN, 256), 0, stream, in_t, out_t, num_tokens,
                       dim);
    } else {
      (void)launch_pdl(silu_and_mul_kernel<T, 1>, grid, threads_for(dim, 256), 0, stream, in_t, out_t, num_tokens, dim);
    }
    return check_launch(kKernel, dtype, shape);
  });
}

LaunchStatus silu_mul(const void* gate, const void* up, void* out, int64_t n, DType dtype, cudaStream_t stream) {
  constexpr const char* kKernel = "silu_mul_kernel";
  const ShapeArgs shape = {{"n", n}};
  if (n < 0) return invalid_argument(kKernel, dtype, shape, "n must be non-negative");
  if (n == 0) return {};
  return dispatch_dtype(dtype, [&](auto tag) -> LaunchStatus {
    using T = typename decltype(tag)::type;
    constexpr int kN = kVecWidth<T>;
    constexpr int kThreads = 256;
    const T* g_t = static_cast<const T*>(gate);
    const T* u_t = static_cast<const T*>(up);
    T* out_t = static_cast<T*>(out);
    const bool vectorized = is_aligned_16(g_t) && is_aligned_16(u_t) && is_aligned_16(out_t);
    const int64_t items = vectorized ? (n + kN - 1) / kN : n;
    const dim3 grid(grid_for((items + kThreads - 1) / kThreads));
    if (vectorized) {
      (void)launch_pdl(silu_mul_kernel<T, kN>, grid, dim3(kThreads), 0, stream, g_t, u_t, out_t, n);
    } else {
      (void)launch_pdl(silu_mul_kernel<T, 1>, grid, dim3(kThreads), 0, stream, g_t, u_t, out_t, n);
    }
    return check_launch(kKernel, dtype, shape);
  });
}

}  // namespace strata::cuda
