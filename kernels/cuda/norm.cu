// RMSNorm kernels: one block per row (warp-shuffle block sum) for hidden-size rows, one warp
// per head for the per-head norm; 16-byte vectors where rows are aligned. All are launched as
// programmatic dependents (common.cuh): they release the next kernel (a GEMV that prefetches its
// weights) at once and prefetch their own norm weight before waiting on the previous kernel.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/norm.h"

namespace strata::cuda {
namespace {

// HF LlamaRMSNorm rounds the normalized row to the input dtype before the weight multiply.
template <class T>
__device__ __forceinline__ T scale_element(float x, float scale, T weight) {
  return from_float<T>(to_float(weight) * to_float(from_float<T>(x * scale)));
}

// The norm weight (a constant) into L2 while the previous kernel finishes.
template <class T>
__device__ __forceinline__ void prefetch_weight(const T* weight, int dim, int first, int stride) {
  constexpr int kLine = 128 / static_cast<int>(sizeof(T));
  for (int i = first * kLine; i < dim; i += stride * kLine) prefetch_l2(weight + i);
}

// x, out: [num_rows, dim]; weight: [dim]. out may alias x: each thread reads an element in
// pass 1 before it writes the same element in pass 2.
template <class T, int N>
__global__ void rms_norm_kernel(const T* x, const T* __restrict__ weight, T* out, int num_rows, int dim, float eps) {
  launch_dependent_grids();
  prefetch_weight(weight, dim, static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x));
  wait_for_prior_grid();
  for (int row = blockIdx.x; row < num_rows; row += gridDim.x) {
    const T* x_row = x + static_cast<int64_t>(row) * dim;
    T* out_row = out + static_cast<int64_t>(row) * dim;
    float sum_sq = 0.0f;
    for (int i = threadIdx.x * N; i < dim; i += blockDim.x * N) {
      const Vec<T, N> v = load_vec<N>(x_row + i);
#pragma unroll
      for (int j = 0; j < N; ++j) {
        const float f = to_float(v.v[j]);
        sum_sq += f * f;
      }
    }
    const float scale = rsqrtf(block_sum(sum_sq) / static_cast<float>(dim) + eps);
    for (int i = threadIdx.x * N; i < dim; i += blockDim.x * N) {
      const Vec<T, N> v = load_vec<N>(x_row + i);
      const Vec<T, N> w = load_vec<N>(weight + i);
      Vec<T, N> o;
#pragma unroll
      for (int j = 0; j < N; ++j) o.v[j] = scale_element(to_float(v.v[j]), scale, w.v[j]);
      store_vec<N>(out_row + i, o);
    }
  }
}

// residual (in/out), x, out: [num_rows, dim]; weight: [dim]. out may alias x, not residual.
template <class T, int N>
__global__ void fused_add_rms_norm_kernel(T* residual, const T* x, const T* __restrict__ weight, T* out, int num_rows,
                                          int dim, float eps) {
  launch_dependent_grids();
  prefetch_weight(weight, dim, static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x));
  wait_for_prior_grid();
  for (int row = blockIdx.x; row < num_rows; row += gridDim.x) {
    T* res_row = residual + static_cast<int64_t>(row) * dim;
    const T* x_row = x + static_cast<int64_t>(row) * dim;
    T* out_row = out + static_cast<int64_t>(row) * dim;
    float sum_sq = 0.0f;
    for (int i = threadIdx.x * N; i < dim; i += blockDim.x * N) {
      const Vec<T, N> r = load_vec<N>(res_row + i);
      const Vec<T, N> v = load_vec<N>(x_row + i);
      Vec<T, N> sum;
#pragma unroll
      for (int j = 0; j < N; ++j) {
        sum.v[j] = from_float<T>(to_float(r.v[j]) + to_float(v.v[j]));
        const float f = to_float(sum.v[j]);
        sum_sq += f * f;
      }
      store_vec<N>(res_row + i, sum);
    }
    const float scale = rsqrtf(block_sum(sum_sq) / static_cast<float>(dim) + eps);
    // Each thread rereads only the residual elements it wrote itself.
    for (int i = threadIdx.x * N; i < dim; i += blockDim.x * N) {
      const Vec<T, N> r = load_vec<N>(res_row + i);
      const Vec<T, N> w = load_vec<N>(weight + i);
      Vec<T, N> o;
#pragma unroll
      for (int j = 0; j < N; ++j) o.v[j] = scale_element(to_float(r.v[j]), scale, w.v[j]);
      store_vec<N>(out_row + i, o);
    }
  }
}

constexpr int kHeadNormWarps = 4;  // heads per block

// x: [num_tokens, num_heads, head_dim] with token rows token_stride apart; weight: [head_dim].
// One warp per (token, head) row.
template <class T, int N>
__global__ void head_rms_norm_kernel(T* x, int num_tokens, int num_heads, int head_dim, int64_t token_stride,
                                     const T* __restrict__ weight, float eps) {
  const int64_t num_rows = static_cast<int64_t>(num_tokens) * num_heads;
  const int lane = threadIdx.x & 31;
  launch_dependent_grids();
  prefetch_weight(weight, head_dim, static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x));
  wait_for_prior_grid();
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * kHeadNormWarps + (threadIdx.x >> 5); row < num_rows;
       row += static_cast<int64_t>(gridDim.x) * kHeadNormWarps) {
    T* head = x + (row / num_heads) * token_stride + (row % num_heads) * head_dim;
    float sum_sq = 0.0f;
    for (int i = lane * N; i < head_dim; i += 32 * N) {
      const Vec<T, N> v = load_vec<N>(head + i);
#pragma unroll
      for (int j = 0; j < N; ++j) {
        const float f = to_float(v.v[j]);
        sum_sq += f * f;
      }
    }
    const float scale = rsqrtf(warp_sum(sum_sq) / static_cast<float>(head_dim) + eps);
    for (int i = lane * N; i < head_dim; i += 32 * N) {
      const Vec<T, N> v = load_vec<N>(head + i);
      const Vec<T, N> w = load_vec<N>(weight + i);
      Vec<T, N> o;
#pragma unroll
      for (int j = 0; j < N; ++j) o.v[j] = scale_element(to_float(v.v[j]), scale, w.v[j]);
      store_vec<N>(head + i, o);
    }
  }
}

}  // namespace

LaunchStatus rms_norm(const void* x, const void* weight, void* out, int num_rows, int dim, float eps, DType dtype,
                      cudaStream_t stream) {
  constexpr const char* kKernel = "rms_norm_kernel";
  const ShapeArgs shape = {{"num_rows", num_rows}, {"dim", dim}};
  if (num_rows < 0 || dim <= 0) return invalid_argument(kKernel, dtype, shape, "need num_rows >= 0 and dim > 0");
  if (num_rows == 0) return {};
  return dispatch_dtype(dtype, [&](auto tag) -> LaunchStatus {
    using T = typename decltype(tag)::type;
    constexpr int kN = kVecWidth<T>;
    const T* x_t = static_cast<const T*>(x);
    const T* w_t = static_cast<const T*>(weight);
    T* out_t = static_cast<T*>(out);
    const dim3 grid(grid_for(num_rows));
    if (dim % kN == 0 && is_aligned_16(x_t) && is_aligned_16(w_t) && is_aligned_16(out_t)) {
      (void)launch_pdl(rms_norm_kernel<T, kN>, grid, threads_for(dim / kN, 1024), 0, stream, x_t, w_t, out_t, num_rows,
                       dim, eps);
    } else {
      (void)launch_pdl(rms_norm_kernel<T, 1>, grid, threads_for(dim, 1024), 0, stream, x_t, w_t, out_t, num_rows, dim,
                       eps);
    }
    return check_launch(kKernel, dtype, shape);
  });
}

LaunchStatus fused_add_rms_norm(void* residual, const void* x, const void* weight, void* out, int num_rows, int dim,
                                float eps, DType dtype, cudaStream_t stream) {
  constexpr const char* kKernel = "fused_add_rms_norm_kernel";
  const ShapeArgs shape = {{"num_rows", num_rows}, {"dim", dim}};
  if (num_rows < 0 || dim <= 0) return invalid_argument(kKernel, dtype, shape, "need num_rows >= 0 and dim > 0");
  if (residual == out) return invalid_argument(kKernel, dtype, shape, "out must not alias residual");
  if (num_rows == 0) return {};
  return dispatch_dtype(dtype, [&](auto tag) -> LaunchStatus {
    using T = typename decltype(tag)::type;
    constexpr int kN = kVecWidth<T>;
    T* res_t = static_cast<T*>(residual);
    const T* x_t = static_cast<const T*>(x);
    const T* w_t = static_cast<const T*>(weight);
    T* out_t = static_cast<T*>(out);
    const dim3 grid(grid_for(num_rows));
    if (dim % kN == 0 && is_aligned_16(res_t) && is_aligned_16(x_t) && is_aligned_16(w_t) && is_aligned_16(out_t)) {
      (void)launch_pdl(fused_add_rms_norm_kernel<T, kN>, grid, threads_for(dim / kN, 1024), 0, stream, res_t, x_t, w_t,
                       out_t, num_rows, dim, eps);
    } else {
      (void)launch_pdl(fused_add_rms_norm_kernel<T, 1>, grid, threads_for(dim, 1024), 0, stream, res_t, x_t, w_t, out_t,
                       num_rows, dim, eps);
    }
    return check_launch(kKernel, dtype, shape);
  });
}

LaunchStatus head_rms_norm(void* x, int num_tokens, int num_heads, int head_dim, int64_t token_stride,
                           const void* weight, float eps, DType dtype, cudaStream_t stream) {
  constexpr const char* kKernel = "head_rms_norm_kernel";
  const ShapeArgs shape = {
      {"num_tokens", num_tokens}, {"num_heads", num_heads}, {"head_dim", head_dim}, {"token_stride", token_stride}};
  if (num_tokens < 0 || num_heads < 0 || head_dim <= 0) {
    return invalid_argument(kKernel, dtype, shape, "need num_tokens, num_heads >= 0 and head_dim > 0");
  }
  if (token_stride < static_cast<int64_t>(num_heads) * head_dim) {
    return invalid_argument(kKernel, dtype, shape, "token_stride must be >= num_heads * head_dim");
  }
  const int64_t num_rows = static_cast<int64_t>(num_tokens) * num_heads;
  if (num_rows == 0) return {};
  return dispatch_dtype(dtype, [&](auto tag) -> LaunchStatus {
    using T = typename decltype(tag)::type;
    constexpr int kN = kVecWidth<T>;
    T* x_t = static_cast<T*>(x);
    const T* w_t = static_cast<const T*>(weight);
    const dim3 grid(grid_for((num_rows + kHeadNormWarps - 1) / kHeadNormWarps));
    const dim3 block(32 * kHeadNormWarps);
    if (head_dim % kN == 0 && token_stride % kN == 0 && is_aligned_16(x_t) && is_aligned_16(w_t)) {
      (void)launch_pdl(head_rms_norm_kernel<T, kN>, grid, block, 0, stream, x_t, num_tokens, num_heads, head_dim,
                       token_stride, w_t, eps);
    } else {
      (void)launch_pdl(head_rms_norm_kernel<T, 1>, grid, block, 0, stream, x_t, num_tokens, num_heads, head_dim,
                       token_stride, w_t, eps);
    }
    return check_launch(kKernel, dtype, shape);
  });
}

}  // namespace strata::cuda
