// Embedding lookup on the GPU (CUDA twin of kernels/cpu/embedding.h): a row gather from the
// token table, bf16/fp16/fp32.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/common.h"

namespace strata::cuda {

// token_ids: [num_tokens] (device); an id outside [0, vocab_size) reads nothing and writes a
//            zero row (the CPU twin leaves validation to callers; a GPU must not fault)
// embedding: [vocab_size, hidden_size]
// out:       [num_tokens, hidden_size]
LaunchStatus embedding_lookup(const int32_t* token_ids, int num_tokens, const void* embedding, int vocab_size,
                              int hidden_size, void* out, DType dtype, cudaStream_t stream);

}  // namespace strata::cuda
