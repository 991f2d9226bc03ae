// Rotary position embedding on the GPU (CUDA twin of kernels/cpu/rope.h): the in-place
// rotate-half (GPT-NeoX) rotation HF Llama, Mistral and Qwen use, bf16/fp16/fp32 q and k.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/common.h"

namespace strata::cuda {

// Rotates q and k in place at each token's position. Element i < head_dim/2 of a head pairs
// with element i + head_dim/2, angle = positions[t] * inv_freq[i] in fp32:
//   x1' = x1 cos - x2 sin,  x2' = x2 cos + x1 sin
// For bf16/fp16 it rounds where HF transformers (and vLLM) do, so a 16-bit run matches theirs
// rather than the fp32 rotation: cos and sin rounded to the dtype, then each product, then
// the sum (r = round), e.g. x1' = r(r(x1 r(cos)) - r(x2 r(sin))). fp32 rounds once.
// q:         [num_tokens, num_q_heads, head_dim], token rows q_stride elements apart
// k:         [num_tokens, num_k_heads, head_dim], token rows k_stride elements apart
//            (k may be nullptr with num_k_heads 0)
// positions: [num_tokens] (device)
// inv_freq:  [head_dim / 2] fp32 (device), built on the host by cpu::rope_inv_freq and, for
//            Llama 3.1 scaling, cpu::rope_llama3_scale, so both backends use one table.
// Launched as a programmatic dependent (kernels/cuda/common.cuh) that reads positions and
// inv_freq before waiting on the previous kernel: neither may be written by a kernel on the
// stream (they are step inputs copied from the host, and a constant table).
LaunchStatus rope_neox(void* q, int64_t q_stride, int num_q_heads, void* k, int64_t k_stride, int num_k_heads,
                       const int32_t* positions, int num_tokens, int head_dim, const float* inv_freq, DType dtype,
                       cudaStream_t stream);

}  // namespace strata::cuda
