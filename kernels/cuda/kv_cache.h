// KV-cache write on the GPU (CUDA twin of kernels/cpu/kv_cache.h): scatters the new tokens'
// K and V into paged blocks, bf16/fp16/fp32 (cache dtype = key/value dtype).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/common.h"

namespace strata::cuda {

// key:          [num_tokens, num_kv_heads, head_dim], token rows key_stride elements apart
// value:        [num_tokens, num_kv_heads, head_dim], token rows value_stride elements apart
// slot_mapping: [num_tokens] (device); slot = block * block_size + offset in block;
//               negative = skip. A slot >= num_slots is skipped too (the CPU twin leaves
//               that to callers; a GPU write there would corrupt memory silently).
// k_cache, v_cache: [num_blocks, block_size, num_kv_heads, head_dim]; num_slots = num_blocks * block_size
LaunchStatus write_kv_cache(const void* key, int64_t key_stride, const void* value, int64_t value_stride,
                            const int64_t* slot_mapping, int num_tokens, int num_kv_heads, int head_dim, void* k_cache,
                            void* v_cache, int64_t num_slots, DType dtype, cudaStream_t stream);

}  // namespace strata::cuda
