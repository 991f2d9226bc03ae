// RoPE kernel: one block per token; its cos/sin table goes to shared memory once and every
// q and k head of the token is rotated from it, 16-byte vectors where heads are aligned.
#include <type_traits>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/rope.h"

namespace strata::cuda {
namespace {

// x rounded to T and back (the identity for fp32).
template <class T>
__device__ __forceinline__ float round_to(float x) {
  return to_float(from_float<T>(x));
}

// q: [num_tokens, num_q_heads, head_dim] (rows q_stride apart), k likewise, positions:
// [num_tokens], inv_freq: [head_dim / 2]. Dynamic shared memory: 2 * (head_dim / 2) floats.
// N elements of x1 and of x2 per step; N > 1 needs (head_dim / 2) % N == 0, strides % N == 0
// and 16-byte aligned q and k.
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
  for (int t = blockIdx.x; t < num_tokens; t += gridDim.x) {
    const float position = static_cast<float>(positions[t]);
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
      // As HF LlamaRotaryEmbedding: angle = position * inv_freq as one fp32 product, the
      // accurate cosf/sinf (angles reach 1e5 rad at long positions; never the __cosf
      // intrinsics), then cos and sin rounded to the activation dtype.
      const float angle = position * inv_freq[i];
      cos_table[i] = round_to<T>(cosf(angle));
      sin_table[i] = round_to<T>(sinf(angle));
    }
    __syncthreads();
    for (int step = threadIdx.x; step < num_steps; step += blockDim.x) {
      const int head = step / steps_per_head;
      const int i = (step - head * steps_per_head) * N;
      T* x = head < num_q_heads ? q + t * q_stride + static_cast<int64_t>(head) * head_dim
                                : k + t * k_stride + static_cast<int64_t>(head - num_q_heads) * head_dim;
      Vec<T, N> x1 = load_vec<N>(x + i);
      Vec<T, N> x2 = load_vec<N>(x + half + i);
#pragma unroll
      for (int j = 0; j < N; ++j) {
        const float a = to_float(x1.v[j]);
        const float b = to_float(x2.v[j]);
        const float c = cos_table[i + j];
        const float s = sin_table[i + j];
        if constexpr (std::is_same_v<T, float>) {
          x1.v[j] = a * c - b * s;
          x2.v[j] = b * c + a * s;
        } else {
          // HF apply_rotary_pos_emb, q * cos + rotate_half(q) * sin, one torch op at a time:
          // each product is rounded to T (the products of two T values are exact in fp32),
          // then their sum.
          x1.v[j] = from_float<T>(round_to<T>(a * c) - round_to<T>(b * s));
          x2.v[j] = from_float<T>(round_to<T>(b * c) + round_to<T>(a * s));
        }
      }
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
      rope_neox_kernel<T, kN><<<grid, block, shared_bytes, stream>>>(
          q_t, q_stride, num_q_heads, k_t, k_stride, num_k_heads, positions, num_tokens, head_dim, inv_freq);
    } else {
      rope_neox_kernel<T, 1><<<grid, block, shared_bytes, stream>>>(
          q_t, q_stride, num_q_heads, k_t, k_stride, num_k_heads, positions, num_tokens, head_dim, inv_freq);
    }
    return check_launch(kKernel, dtype, shape);
  });
}

}  // namespace strata::cuda
