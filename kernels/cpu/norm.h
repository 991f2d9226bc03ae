// RMSNorm family (CPU reference): plain, fused residual-add, and per-head (Qwen3 q/k norm).
// All follow HF LlamaRMSNorm in fp32: out = x / sqrt(mean(x^2) + eps) * weight.
#pragma once

#include <cstdint>

namespace strata::cpu {

// x:      [num_rows, dim]
// weight: [dim]
// out:    [num_rows, dim] (may alias x)
void rms_norm(const float* x, const float* weight, float* out, int num_rows, int dim, float eps);

// residual += x; out = rms_norm(residual) * weight
// residual: [num_rows, dim] (in/out), x: [num_rows, dim], weight: [dim], out: [num_rows, dim]
// out may alias x but not residual.
void fused_add_rms_norm(float* residual, const float* x, const float* weight, float* out, int num_rows, int dim,
                        float eps);

// Per-head RMSNorm over head_dim, in place (Qwen3 q_norm / k_norm).
// x:      [num_tokens, num_heads, head_dim], token rows `token_stride` elements apart
//         (heads of a token are contiguous)
// weight: [head_dim]
void head_rms_norm(float* x, int num_tokens, int num_heads, int head_dim, int64_t token_stride, const float* weight,
                   float eps);

}  // namespace strata::cpu
