// RoPE and the KV-cache write in one launch (kernels/cuda/rope.h then kernels/cuda/kv_cache.h):
// at one token per sequence the two were separate ~2 us kernels of a few hundred bytes each.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/common.h"

namespace strata::cuda {

// Exactly rope_neox(q, k) followed by write_kv_cache(k, v): q and k rotated in place at each
// token's position (rounded as rope_neox rounds), then the rotated k and the unchanged v of
// each token copied bit for bit into its slot; a negative slot or one >= num_slots writes no
// cache (q and k are still rotated).
// q:            [num_tokens, num_q_heads, head_dim], token rows q_stride elements apart
// k:            [num_tokens, num_kv_heads, head_dim], token rows k_stride elements apart
// v:            [num_tokens, num_kv_heads, head_dim], token rows v_stride elements apart
// positions:    [num_tokens] (device); inv_freq: [head_dim / 2] fp32 (device), as rope_neox
// slot_mapping: [num_tokens] (device), slot = block * block_size + offset in block
// k_cache, v_cache: [num_blocks, block_size, num_kv_heads, head_dim]; num_slots = num_blocks * block_size
// positions, inv_freq and slot_mapping are read before waiting on the previous kernel (a
// programmatic dependent launch): no kernel on the stream may write them.
LaunchStatus rope_and_write_kv(void* q, int64_t q_stride, int num_q_heads, void* k, int64_t k_stride, const void* v,
                               int64_t v_stride, int num_kv_heads, const int32_t* positions,
                               const int64_t* slot_mapping, int num_tokens, int head_dim, const float* inv_freq,
                               void* k_cache, void* v_cache, int64_t num_slots, DType dtype, cudaStream_t stream);

}  // namespace strata::cuda
