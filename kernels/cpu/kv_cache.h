// KV-cache write (CPU reference): scatters the new tokens' K and V into paged blocks.
#pragma once

#include <cstdint>

namespace strata::cpu {

// key:          [num_tokens, num_kv_heads, head_dim], token rows key_stride elements apart
// value:        [num_tokens, num_kv_heads, head_dim], token rows value_stride elements apart
// slot_mapping: [num_tokens]; slot = block * block_size + offset in block; negative = skip
// k_cache, v_cache: [num_blocks, block_size, num_kv_heads, head_dim]
// (The cache layout makes a slot's rows contiguous, so block_size is not needed here.)
void write_kv_cache(const float* key, int64_t key_stride, const float* value, int64_t value_stride,
                    const int64_t* slot_mapping, int num_tokens, int num_kv_heads, int head_dim, float* k_cache,
                    float* v_cache);

}  // namespace strata::cpu
