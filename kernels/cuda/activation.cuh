// SwiGLU's element function, shared by the activation kernels and the gate_up GEMV that applies
// it in its epilogue (gemm.cu), so both round at the same points.
#pragma once

#include <type_traits>

#include "kernels/cuda/common.cuh"

namespace strata::cuda {

// fp32 rounds once. bf16/fp16 round where HF's act_fn(gate_proj(x)) * up_proj(x) does (two
// torch ops): silu(gate) to T, then the product. silu as torch's kernel: g / (1 + expf(-g))
// with the accurate expf.
template <class T>
__device__ __forceinline__ T silu_mul_element(T gate, T up) {
  const float g = to_float(gate);
  const float silu = g / (1.0f + expf(-g));
  if constexpr (std::is_same_v<T, float>) {
    return silu * up;
  } else {
    return from_float<T>(to_float(from_float<T>(silu)) * to_float(up));
  }
}

}  // namespace strata::cuda
