// RoPE kernel: one block per token; its cos/sin table goes to shared memory once and every
// q and k head of the token is rotated from it, 16-byte vectors where heads are aligned.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/rope.cuh"
#include "kernels/cuda/rope.h"

namespace strata::cuda {
namespace {

// q: [num_tokens, num_q_heads, head_dim] (rows q_stride apart), k likewise, positions:
// [num_tokens], inv_freq: [head_dim / 2]. Dynamic shared memory: 2 * (head_dim / 2) floats.
// N elements of x1 and of x2 per step; N > 1 needs (head_dim / 2) % N == 0, strides % N == 0
// and 16-byte aligned q and k. A programmatic dependent (common.cuh): the first token's table
// is built from positions and inv_freq (step inputs no kernel writes) before the wait.
template <class T, int N>
__global__ void rope_neox_kernel(T* q, int64_t q_stride, int num_q_heads, T* k, int64_t k_stride, int num_k_heads,
                                 const int32_t* __restrict__ positions, int num_tokens, int head_dim,
                                 const float* __restrict__ inv_freq) {
  extern __shared__ float cos_sin[];
  const int half = head_dim / 2;
  float* cos_table = cos_sin;
  float* sin_table = cos_sin + half;
  const int steps_per_head = half / N;
  const int num_steps = (num_q_heads + num_k_heads) * steps_per_head;
  launch_dependent_grids();
  const int first = blockIdx.x;
  if (first < num_tokens)
    rope_fill_table<T>(cos_table, sin_table, static_cast<float>(positions[first]), inv_freq, half);
  wait_for_prior_grid();
  for (int t = first; t < num_tokens; t += gridDim.x) {
    if (t != first) rope_fill_table<T>(cos_table, sin_table, static_cast<float>(positions[t]), inv_freq, half);
    __syncthreads();
    for (int step = threadIdx.x; step < num_steps; step += blockDim.x) {
      const int head = step / steps_per_head;
      const int i = (step - head * steps_per_head) * N;
      T* x = head < num_q_heads ? q + t * q_stride + static_cast<int64_t>(head) * head_dim
                                : k + t * k_stride + static_cast<int64_t>(head - num_q_heads) * head_dim;
      Vec<T, N> x1 = load_vec<N>(x + i);
      Vec<T, N> x2 = load_vec<N>(x + half + i);
      rope_rotate<T, N>(x1, x2, cos_table, sin_table, i);
      store_vec<N>(x + i, x1);
      store_vec<N>(x + half + i, x2);
    }
    __syncthreads();  // the next token overwrites the table
  }
}

}  // namespace

LaunchStatus rope_neox(void* q, int64_t q_stride, int num_q_heads, void* k, int64_t k_stride, int num_k_heads,
                       const int32_t* positions, int num_tokens, int head_dim, const float* inv_freq, DType dtype,
                       cudaStream_t stream) {
  constexpr const char* kKernel = "rope_neox_kernel";
  const ShapeArgs shape = {{"num_tokens", num_tokens}, {"num_q_heads", num_q_heads}, {"num_k_heads", num_k_heads},
                           {"head_dim", head_dim},     {"q_stride", q_stride},       {"k_stride", k_stride}};
  if (num_tokens < 0 || num_q_heads < 0 || num_k_heads < 0) {
    return invalid_argument(kKernel, dtype, shape, "sizes must be non-negative");
  }
  if (head_dim <= 0 || head_dim % 2 != 0) return invalid_argument(kKernel, dtype, shape, "head_dim must be even");
  if (k == nullptr && num_k_heads != 0) return invalid_argument(kKernel, dtype, shape, "k is null but num_k_heads > 0");
  if (num_tokens == 0 || num_q_heads + num_k_heads == 0) return {};
  return dispatch_dtype(dtype, [&](auto tag) -> LaunchStatus {
    using T = typename decltype(tag)::type;
    constexpr int kN = kVecWidth<T>;
    T* q_t = static_cast<T*>(q);
    T* k_t = static_cast<T*>(k);
    const int half = head_dim / 2;
    const bool k_ok = num_k_heads == 0 || (is_aligned_16(k_t) && k_stride % kN == 0);
    const bool vectorized = half % kN == 0 && is_aligned_16(q_t) && q_stride % kN == 0 && k_ok;
    const int n = vectorized ? kN : 1;
    const int64_t steps = static_cast<int64_t>(num_q_heads + num_k_heads) * (half / n);
    const dim3 grid(grid_for(num_tokens));
    const dim3 block(threads_for(steps, 256));
    const size_t shared_bytes = 2 * static_cast<size_t>(half) * sizeof(float);
    if (vectorized) {
      (void)launch_pdl(rope_neox_kernel<T, kN>, grid, block, shared_bytes, stream, q_t, q_stride, num_q_heads, k_t,
                       k_stride, num_k_heads, positions, num_tokens, head_dim, inv_freq);
    } else {
      (void)launch_pdl(rope_neox_kernel<T, 1>, grid, block, shared_bytes, stream, q_t, q_stride, num_q_heads, k_t,
                       k_stride, num_k_heads, positions, num_tokens, head_dim, inv_freq);
    }
    return check_launch(kKernel, dtype, shape);
  });
}

}  // namespace strata::cuda
