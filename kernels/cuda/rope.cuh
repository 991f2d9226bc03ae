// RoPE device helpers shared by rope_neox_kernel (rope.cu) and the fused RoPE + KV-cache write
// (rope_kv.cu): the per-token cos/sin table and the rotation of one (x1, x2) vector pair, so
// both kernels round at exactly the same points.
#pragma once

#include <type_traits>

#include "kernels/cuda/common.cuh"

namespace strata::cuda {

// x rounded to T and back (the identity for fp32).
template <class T>
__device__ __forceinline__ float rope_round_to(float x) {
  return to_float(from_float<T>(x));
}

// cos_table, sin_table: [half] in shared memory, filled by the block's threads (the caller
// syncs). As HF LlamaRotaryEmbedding: angle = position * inv_freq as one fp32 product, the
// accurate cosf/sinf (angles reach 1e5 rad at long positions; never the __cosf intrinsics),
// then cos and sin rounded to the activation dtype.
template <class T>
__device__ __forceinline__ void rope_fill_table(float* cos_table, float* sin_table, float position,
                                                const float* __restrict__ inv_freq, int half) {
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const float angle = position * inv_freq[i];
    cos_table[i] = rope_round_to<T>(cosf(angle));
    sin_table[i] = rope_round_to<T>(sinf(angle));
  }
}

// Rotates elements [i, i + N) of x1 (the first half of a head) with the same elements of x2
// (the second half): x1' = x1 cos - x2 sin, x2' = x2 cos + x1 sin.
template <class T, int N>
__device__ __forceinline__ void rope_rotate(Vec<T, N>& x1, Vec<T, N>& x2, const float* cos_table,
                                            const float* sin_table, int i) {
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
      x1.v[j] = from_float<T>(rope_round_to<T>(a * c) - rope_round_to<T>(b * s));
      x2.v[j] = from_float<T>(rope_round_to<T>(b * c) + rope_round_to<T>(a * s));
    }
  }
}

}  // namespace strata::cuda
