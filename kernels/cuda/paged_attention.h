// Paged causal attention on the GPU (CUDA twin of kernels/cpu/paged_attention.h): prefill
// chunks and decodes of a ragged batch in one call, GQA, sliding window, fp32 softmax.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/common.h"

namespace strata::cuda {

// Device scratch the launcher needs (split counters, split-KV partial outputs and their
// max/sum), for a step with these host-known bounds; 0 when no decode can split. The launcher
// never needs more than this (a few MiB at most, independent of the batch size); given less,
// it uses fewer splits, and given 0 it runs every decode unsplit.
size_t paged_attention_workspace_bytes(int num_tokens, int num_heads, int head_dim, int max_context_len);

// Zeroes the workspace's split counters, on `stream`. Call it once after allocating the
// workspace (and again only if something else wrote over it): every paged_attention call
// leaves the counters zero for the next one on the same stream.
cudaError_t paged_attention_clear_workspace(void* workspace, size_t workspace_bytes, cudaStream_t stream);

// Same semantics and layouts as cpu::paged_attention:
// out:          [num_tokens, num_heads, head_dim] (contiguous)
// q:            [num_tokens, num_heads, head_dim], token rows q_stride elements apart
//               (q_stride % 8 == 0, e.g. q inside a fused qkv buffer)
// k_cache, v_cache: [num_blocks, block_size, num_kv_heads, head_dim]
// block_tables: [num_seqs, max_blocks_per_seq]
// query_start:  [num_seqs + 1]; context_lens: [num_seqs] (the new tokens included)
// All pointers are device pointers, 16-byte aligned. dtype bf16 or f16 (f32 is refused),
// fp32 softmax and accumulation. head_dim 64 or 128 (and 16, 32, as in small test models);
// block_size a power of two; num_heads / num_kv_heads in 1..8. max_query_len and
// max_context_len are host-side bounds of the batch (no device->host copy). Sequences with
// one new token take a split-KV decode kernel (SIMT for GQA 1-2, tensor cores for 3-8), the
// others the tiled tensor-core prefill kernel; all run on `stream`, in that order. The decode
// kernel merges its own splits and is a programmatic dependent launch (it reads query_start,
// context_lens and block_tables before the previous kernel on the stream has finished, q and
// the caches only after). workspace: cleared by paged_attention_clear_workspace.
LaunchStatus paged_attention(void* out, const void* q, int64_t q_stride, const void* k_cache, const void* v_cache,
                             const int32_t* block_tables, int max_blocks_per_seq, const int32_t* query_start,
                             const int32_t* context_lens, int num_seqs, int num_tokens, int max_query_len,
                             int max_context_len, int num_heads, int num_kv_heads, int head_dim, int block_size,
                             float scale, int sliding_window, void* workspace, size_t workspace_bytes, DType dtype,
                             cudaStream_t stream);

}  // namespace strata::cuda
