// Paged decode attention kernels: split-KV flash-decoding. Each split of a sequence's
// visible context writes a partial (out, max, sum) and a second kernel combines the splits
// (the log-sum-exp merge of Dao et al., "Flash-Decoding for long-context inference", 2023).
// Included by paged_attention.cu only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/cuda/common.cuh"

namespace strata::cuda::paged {

inline constexpr int kDecodeWarps = 4;
inline constexpr int kDecodeThreads = kDecodeWarps * 32;
inline constexpr int kDecodeUnroll = 4;  // slots in flight per lane group per iteration

// SIMT decode for GQA 1 and 2 (the tensor-core kernel takes larger groups): one CTA per
// (sequence, kv head, split); the `group` query heads of the kv head (at most kGroup) are
// handled together so each K/V row is read once. Within a warp, a lane group of
// kHeadDim / 8 lanes owns one slot at a time (16 bytes of K and of V per lane), so a warp
// covers 2 (head_dim 128) or 4 (head_dim 64) slots, kDecodeUnroll times over, per step. Each
// lane group keeps its own online softmax; lane groups and warps merge at the end.
// Sequences with n_new != 1 are left to the prefill kernel.
//
// out:          [num_tokens, num_heads, kHeadDim] (written when num_splits == 1)
// q:            [num_tokens, num_heads, kHeadDim], token rows q_stride elements apart
// k_cache, v_cache: [num_blocks, block_size, num_kv_heads, kHeadDim]
// partial_out:  [num_seqs, num_heads, num_splits, kHeadDim] fp32, normalized per split
// partial_ml:   [num_seqs, num_heads, num_splits, 2] fp32 (max in the exp2 domain, sum)
// Split k covers visible slots [lo + k * split_len, lo + (k + 1) * split_len) of [lo, p].
// grid: (num_seqs, num_kv_heads, num_splits); block: 128 threads.
template <class T, int kHeadDim, int kGroup>
__global__ void __launch_bounds__(kDecodeThreads, 1)
    paged_decode_kernel(T* __restrict__ out, const T* __restrict__ q, int64_t q_stride, const T* __restrict__ k_cache,
                        const T* __restrict__ v_cache, const int32_t* __restrict__ block_tables, int max_blocks_per_seq,
                        const int32_t* __restrict__ query_start, const int32_t* __restrict__ context_lens,
                        int num_heads, int num_kv_heads, int group, int block_shift, float scale_log2,
                        int sliding_window, int split_len, int num_splits, float* __restrict__ partial_out,
                        float* __restrict__ partial_ml) {
  constexpr int kN = 8;                         // elements per lane: one 16-byte vector
  constexpr int kLanesPerSlot = kHeadDim / kN;  // 8 or 16
  constexpr int kSlotsPerWarp = 32 / kLanesPerSlot;
  constexpr int kStep = kDecodeWarps * kSlotsPerWarp;  // slots between a lane group's unrolled loads
  const float kNegInf = -__int_as_float(0x7f800000);

  const int seq = blockIdx.x;
  const int kv_head = blockIdx.y;
  const int split = blockIdx.z;
  const int q_row = query_start[seq];
  if (query_start[seq + 1] - q_row != 1) return;
  const int context_len = context_lens[seq];
  const int pos = context_len - 1;
  const int lo = sliding_window > 0 ? max(0, pos - sliding_window + 1) : 0;
  const int begin = lo + split * split_len;
  const int end = min(pos + 1, begin + split_len);
  if (begin >= end) return;  // the combine kernel reads only the splits that hold slots

  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int sub = lane / kLanesPerSlot;  // slot of the warp's step
  const int d0 = (lane % kLanesPerSlot) * kN;
  const int32_t* block_table = block_tables + static_cast<int64_t>(seq) * max_blocks_per_seq;
  const int block_size = 1 << block_shift;
  const int64_t slot_stride = static_cast<int64_t>(num_kv_heads) * kHeadDim;
  const int64_t head_offset = static_cast<int64_t>(kv_head) * kHeadDim + d0;

  float q_reg[kGroup][kN];
#pragma unroll
  for (int h = 0; h < kGroup; ++h) {
    Vec<T, kN> qv{};
    if (h < group) {
      qv = load_vec<kN>(q + static_cast<int64_t>(q_row) * q_stride +
                        static_cast<int64_t>(kv_head * group + h) * kHeadDim + d0);
    }
#pragma unroll
    for (int i = 0; i < kN; ++i) q_reg[h][i] = h < group ? to_float(qv.v[i]) * scale_log2 : 0.0f;
  }

  float row_max[kGroup], row_sum[kGroup], acc[kGroup][kN];
#pragma unroll
  for (int h = 0; h < kGroup; ++h) {
    row_max[h] = kNegInf;
    row_sum[h] = 0.0f;
#pragma unroll
    for (int i = 0; i < kN; ++i) acc[h][i] = 0.0f;
  }

  // The loop bound is warp-uniform (shuffles below span the warp); lanes past `end` mask.
  for (int base = begin + warp * kSlotsPerWarp; base < end; base += kStep * kDecodeUnroll) {
    Vec<T, kN> k_vec[kDecodeUnroll], v_vec[kDecodeUnroll];
    bool valid[kDecodeUnroll];
#pragma unroll
    for (int u = 0; u < kDecodeUnroll; ++u) {
      const int slot = base + u * kStep + sub;
      valid[u] = slot < end;
      if (valid[u]) {
        const int64_t block = block_table[slot >> block_shift];
        const int64_t offset = (block * block_size + (slot & (block_size - 1))) * slot_stride + head_offset;
        k_vec[u] = load_vec<kN>(k_cache + offset);
        v_vec[u] = load_vec<kN>(v_cache + offset);
      } else {
        k_vec[u] = Vec<T, kN>{};
        v_vec[u] = Vec<T, kN>{};
      }
    }
    float score[kDecodeUnroll][kGroup];
#pragma unroll
    for (int u = 0; u < kDecodeUnroll; ++u) {
      float k_f[kN];
#pragma unroll
      for (int i = 0; i < kN; ++i) k_f[i] = to_float(k_vec[u].v[i]);
#pragma unroll
      for (int h = 0; h < kGroup; ++h) {
        float dot = 0.0f;
#pragma unroll
        for (int i = 0; i < kN; ++i) dot = fmaf(q_reg[h][i], k_f[i], dot);
#pragma unroll
        for (int offset = kLanesPerSlot / 2; offset > 0; offset >>= 1) {
          dot += __shfl_xor_sync(0xffffffffu, dot, offset);
        }
        score[u][h] = valid[u] ? dot : kNegInf;
      }
    }
#pragma unroll
    for (int h = 0; h < kGroup; ++h) {
      float new_max = row_max[h];
#pragma unroll
      for (int u = 0; u < kDecodeUnroll; ++u) new_max = fmaxf(new_max, score[u][h]);
      const float offset = new_max == kNegInf ? 0.0f : new_max;
      const float rescale = exp2f(row_max[h] - offset);
      row_max[h] = new_max;
      row_sum[h] *= rescale;
#pragma unroll
      for (int i = 0; i < kN; ++i) acc[h][i] *= rescale;
#pragma unroll
      for (int u = 0; u < kDecodeUnroll; ++u) {
        const float p = exp2f(score[u][h] - offset);
        row_sum[h] += p;
#pragma unroll
        for (int i = 0; i < kN; ++i) acc[h][i] = fmaf(p, to_float(v_vec[u].v[i]), acc[h][i]);
      }
    }
  }

  // Merge the warp's lane groups (lanes d0 apart by kLanesPerSlot hold the same dims).
#pragma unroll
  for (int offset = kLanesPerSlot; offset < 32; offset <<= 1) {
#pragma unroll
    for (int h = 0; h < kGroup; ++h) {
      const float other_max = __shfl_xor_sync(0xffffffffu, row_max[h], offset);
      const float other_sum = __shfl_xor_sync(0xffffffffu, row_sum[h], offset);
      const float new_max = fmaxf(row_max[h], other_max);
      const float base = new_max == kNegInf ? 0.0f : new_max;
      const float mine = exp2f(row_max[h] - base);
      const float theirs = exp2f(other_max - base);
      row_max[h] = new_max;
      row_sum[h] = row_sum[h] * mine + other_sum * theirs;
#pragma unroll
      for (int i = 0; i < kN; ++i) {
        const float other_acc = __shfl_xor_sync(0xffffffffu, acc[h][i], offset);
        acc[h][i] = acc[h][i] * mine + other_acc * theirs;
      }
    }
  }

  // Merge the warps through shared memory.
  __shared__ float s_max[kDecodeWarps][kGroup];
  __shared__ float s_sum[kDecodeWarps][kGroup];
  __shared__ float s_acc[kDecodeWarps][kGroup][kHeadDim];
  if (sub == 0) {
#pragma unroll
    for (int h = 0; h < kGroup; ++h) {
      if (d0 == 0) {
        s_max[warp][h] = row_max[h];
        s_sum[warp][h] = row_sum[h];
      }
#pragma unroll
      for (int i = 0; i < kN; ++i) s_acc[warp][h][d0 + i] = acc[h][i];
    }
  }
  __syncthreads();
  for (int e = threadIdx.x; e < group * kHeadDim; e += kDecodeThreads) {
    const int h = e / kHeadDim;
    const int d = e % kHeadDim;
    float max_all = kNegInf;
#pragma unroll
    for (int w = 0; w < kDecodeWarps; ++w) max_all = fmaxf(max_all, s_max[w][h]);
    float sum = 0.0f, value = 0.0f;
#pragma unroll
    for (int w = 0; w < kDecodeWarps; ++w) {
      const float weight = s_max[w][h] == kNegInf ? 0.0f : exp2f(s_max[w][h] - max_all);
      sum += s_sum[w][h] * weight;
      value += s_acc[w][h][d] * weight;
    }
    const int head = kv_head * group + h;
    const float normalized = sum > 0.0f ? value / sum : 0.0f;
    if (num_splits == 1) {
      out[(static_cast<int64_t>(q_row) * num_heads + head) * kHeadDim + d] = from_float<T>(normalized);
    } else {
      const int64_t row = (static_cast<int64_t>(seq) * num_heads + head) * num_splits + split;
      partial_out[row * kHeadDim + d] = normalized;
      if (d == 0) {
        partial_ml[2 * row] = max_all;
        partial_ml[2 * row + 1] = sum;
      }
    }
  }
}

// Combines the splits of each decode (sequence, query head): weights sum_k * 2^(max_k - max).
// out: [num_tokens, num_heads, kHeadDim]; partial_*: as paged_decode_kernel.
// grid: (num_seqs, num_heads); block: kHeadDim threads.
template <class T, int kHeadDim>
__global__ void __launch_bounds__(kHeadDim)
    paged_decode_combine_kernel(T* __restrict__ out, const float* __restrict__ partial_out,
                                const float* __restrict__ partial_ml, const int32_t* __restrict__ query_start,
                                const int32_t* __restrict__ context_lens, int num_heads, int sliding_window,
                                int split_len, int num_splits) {
  const int seq = blockIdx.x;
  const int head = blockIdx.y;
  const int q_row = query_start[seq];
  if (query_start[seq + 1] - q_row != 1) return;
  const int pos = context_lens[seq] - 1;
  const int lo = sliding_window > 0 ? max(0, pos - sliding_window + 1) : 0;
  const int used = min(num_splits, (pos - lo + split_len) / split_len);
  const int64_t row0 = (static_cast<int64_t>(seq) * num_heads + head) * num_splits;
  const int d = threadIdx.x;

  float max_all = partial_ml[2 * row0];
  for (int k = 1; k < used; ++k) max_all = fmaxf(max_all, partial_ml[2 * (row0 + k)]);
  float sum = 0.0f, value = 0.0f;
  for (int k = 0; k < used; ++k) {
    const float weight = partial_ml[2 * (row0 + k) + 1] * exp2f(partial_ml[2 * (row0 + k)] - max_all);
    sum += weight;
    value += weight * partial_out[(row0 + k) * kHeadDim + d];
  }
  out[(static_cast<int64_t>(q_row) * num_heads + head) * kHeadDim + d] = from_float<T>(sum > 0.0f ? value / sum : 0.0f);
}

}  // namespace strata::cuda::paged
