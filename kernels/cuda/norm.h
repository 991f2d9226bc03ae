// RMSNorm family on the GPU (CUDA twin of kernels/cpu/norm.h): plain, fused residual-add,
// and per-head (Qwen3 q/k norm); bf16/fp16/fp32 tensors, fp32 math.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/common.h"

namespace strata::cuda {

// As HF LlamaRMSNorm: out = weight * to_dtype(x / sqrt(mean(x^2) + eps)).
// x:      [num_rows, dim]
// weight: [dim]
// out:    [num_rows, dim] (may alias x)
LaunchStatus rms_norm(const void* x, const void* weight, void* out, int num_rows, int dim, float eps, DType dtype,
                      cudaStream_t stream);

// residual = to_dtype(residual + x); out = rms_norm(residual) * weight
// residual: [num_rows, dim] (in/out), x: [num_rows, dim], weight: [dim], out: [num_rows, dim]
// out may alias x but not residual.
LaunchStatus fused_add_rms_norm(void* residual, const void* x, const void* weight, void* out, int num_rows, int dim,
                                float eps, DType dtype, cudaStream_t stream);

// Per-head RMSNorm over head_dim, in place (Qwen3 q_norm / k_norm).
// x:      [num_tokens, num_heads, head_dim], token rows `token_stride` elements apart
//         (heads of a token are contiguous)
// weight: [head_dim]
LaunchStatus head_rms_norm(void* x, int num_tokens, int num_heads, int head_dim, int64_t token_stride,
                           const void* weight, float eps, DType dtype, cudaStream_t stream);

}  // namespace strata::cuda
