// Paged causal attention over block tables for a ragged batch (CPU reference): prefill
// chunks and decodes in one call, GQA, optional sliding window, fp32 softmax.
#pragma once

#include <cstdint>

namespace strata::cpu {

// Sequence s owns query rows [query_start[s], query_start[s+1]) (n_new rows) and has
// context_lens[s] tokens in the cache, the new ones included (already written). Its j-th new
// token sits at slot p = context_lens[s] - n_new + j and attends to slots [lo, p], with
// lo = 0, or lo = max(0, p - sliding_window + 1) when sliding_window > 0. Query head h reads
// kv head h / (num_heads / num_kv_heads). Scores are scaled by `scale` (1/sqrt(head_dim)).
//
// out:          [num_tokens, num_heads, head_dim] (contiguous)
// q:            [num_tokens, num_heads, head_dim], token rows q_stride elements apart
// k_cache, v_cache: [num_blocks, block_size, num_kv_heads, head_dim]
// block_tables: [num_seqs, max_blocks_per_seq]; slot t of s is in block
//               block_tables[s * max_blocks_per_seq + t / block_size] at offset t % block_size
// query_start:  [num_seqs + 1], query_start[0] = 0, num_tokens = query_start[num_seqs]
// context_lens: [num_seqs]
void paged_attention(float* out, const float* q, int64_t q_stride, const float* k_cache, const float* v_cache,
                     const int32_t* block_tables, int max_blocks_per_seq, const int32_t* query_start,
                     const int32_t* context_lens, int num_seqs, int num_heads, int num_kv_heads, int head_dim,
                     int block_size, float scale, int sliding_window);

}  // namespace strata::cpu
