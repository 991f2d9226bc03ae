// Gated activations on the GPU (CUDA twin of kernels/cpu/activation.h): SwiGLU,
// silu(gate) * up as in the Llama MLP, bf16/fp16/fp32 tensors, fp32 math.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/common.h"

namespace strata::cuda {

// gate_up: [num_tokens, 2 * dim], each row [gate | up]
// out:     [num_tokens, dim];  out = silu(gate) * up, silu(x) = x / (1 + exp(-x))
// bf16/fp16 round silu(gate) to the dtype before the product, as HF transformers and vLLM
// do (the product is rounded too); fp32 rounds once.
LaunchStatus silu_and_mul(const void* gate_up, void* out, int num_tokens, int dim, DType dtype, cudaStream_t stream);

// gate, up, out: [n] (out may alias gate or up)
LaunchStatus silu_mul(const void* gate, const void* up, void* out, int64_t n, DType dtype, cudaStream_t stream);

}  // namespace strata::cuda
