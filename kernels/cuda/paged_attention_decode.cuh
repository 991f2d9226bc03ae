// Paged decode attention kernels: split-KV flash-decoding, SIMT for GQA 1-2 and tensor cores
// for larger groups. Each split of a sequence's visible context writes a partial (out, max,
// sum); the last split CTA of a (sequence, kv head) to finish merges them (the log-sum-exp
// merge of Dao et al., "Flash-Decoding for long-context inference", 2023), so a decode is one
// kernel. Both kernels are programmatic dependent launches: they read the step inputs (query
// starts, context lengths, block tables) before waiting for the kernel before them (which
// writes q and the caches). Included by paged_attention.cu only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/paged_attention_mma.cuh"  // cp.async, ldmatrix, mma and swizzle helpers

namespace strata::cuda::paged {

// The most splits a decode may have.
inline constexpr int kMaxDecodeSplits = 64;

// Element d of a decode's attention for one (sequence, head, split), normalized over the
// split: the output row itself when the sequence's context has one split (`used`), else the
// split's partial and (d == 0) its (max, sum) for merge_splits_if_last.
template <class T, int kHeadDim>
__device__ __forceinline__ void store_decode_result(T* out, float* partial_out, float* partial_ml, int q_row, int seq,
                                                    int head, int split, int num_heads, int num_splits, int used, int d,
                                                    float normalized, float max_all, float sum) {
  if (used == 1) {
    out[(static_cast<int64_t>(q_row) * num_heads + head) * kHeadDim + d] = from_float<T>(normalized);
    return;
  }
  const int64_t row = (static_cast<int64_t>(seq) * num_heads + head) * num_splits + split;
  partial_out[row * kHeadDim + d] = normalized;
  if (d == 0) {
    partial_ml[2 * row] = max_all;
    partial_ml[2 * row + 1] = sum;
  }
}

// Splits of the visible context [lo, pos] that hold slots.
__device__ __forceinline__ int used_splits(int lo, int pos, int split_len, int num_splits) {
  return min(num_splits, (pos - lo + split_len) / split_len);
}

// After a split CTA of (seq, kv_head) has stored its partials (store_decode_result, used > 1):
// one thread counts the CTA in counters[seq * num_kv_heads + kv_head] (a release of the CTA's
// stores, ordered before it by the barrier, and an acquire of the others'), and the CTA that
// brings the count to `used` resets it to zero (every split has counted, none touches it again
// in this launch: the next launch finds it zero) and merges the group's heads over the splits
// into out, weights sum_k * 2^(max_k - max), as an online softmax over batches of splits so
// that each thread loads (max, sum) and partial of a batch at once: one L2 round trip per
// kMergeBatch splits, no barrier. The other splits' partials are read from L2 (__ldcg: this
// SM's L1 may hold stale lines of an earlier launch). s_flag: an int of shared memory the CTA
// no longer needs from the first barrier here on (a __shared__ variable of its own would add
// static shared memory to the kernels: 16 bytes of it cost the tensor-core decode 17% of its
// bandwidth at batch 64 on an H200).
template <class T, int kHeadDim, int kThreads>
__device__ __forceinline__ void merge_splits_if_last(T* out, const float* partial_out, const float* partial_ml,
                                                     unsigned* counters, int* s_flag, int q_row, int seq, int kv_head,
                                                     int group, int num_heads, int num_kv_heads, int num_splits,
                                                     int used) {
  static_assert(kHeadDim % 4 == 0, "float4 dims");
  constexpr int kQuads = kHeadDim / 4;
  constexpr int kMergeBatch = 16;
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned* counter = counters + static_cast<int64_t>(seq) * num_kv_heads + kv_head;
    unsigned before;
    asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;\n" : "=r"(before) : "l"(counter) : "memory");
    const bool last = before == static_cast<unsigned>(used - 1);
    if (last) *counter = 0u;
    *s_flag = last;
  }
  __syncthreads();
  if (!*s_flag) return;

  const float kNegInf = -__int_as_float(0x7f800000);
  const int64_t head0 = static_cast<int64_t>(seq) * num_heads + kv_head * group;
  // Four dims of one head per thread.
  for (int e = threadIdx.x; e < group * kQuads; e += kThreads) {
    const int h = e / kQuads;
    const int d = (e % kQuads) * 4;
    const float2* ml = reinterpret_cast<const float2*>(partial_ml) + (head0 + h) * num_splits;
    const float4* partial = reinterpret_cast<const float4*>(partial_out + (head0 + h) * num_splits * kHeadDim + d);
    float run_max = kNegInf, total = 0.0f;
    float4 value = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    for (int k0 = 0; k0 < used; k0 += kMergeBatch) {
      float2 split_ml[kMergeBatch];
      float4 v[kMergeBatch];
#pragma unroll
      for (int j = 0; j < kMergeBatch; ++j) {
        const bool real = k0 + j < used;
        split_ml[j] = real ? __ldcg(ml + k0 + j) : make_float2(kNegInf, 0.0f);
        v[j] = real ? __ldcg(partial + static_cast<int64_t>(k0 + j) * kQuads) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      }
      float batch_max = run_max;
#pragma unroll
      for (int j = 0; j < kMergeBatch; ++j) batch_max = fmaxf(batch_max, split_ml[j].x);
      // Split k0 < used holds slots, so batch_max is finite; the first rescale is 2^-inf = 0.
      const float rescale = exp2f(run_max - batch_max);
      run_max = batch_max;
      total *= rescale;
      value.x *= rescale;
      value.y *= rescale;
      value.z *= rescale;
      value.w *= rescale;
#pragma unroll
      for (int j = 0; j < kMergeBatch; ++j) {
        const float w = split_ml[j].y * exp2f(split_ml[j].x - batch_max);  // 0 past `used`
        total += w;
        value.x = fmaf(w, v[j].x, value.x);
        value.y = fmaf(w, v[j].y, value.y);
        value.z = fmaf(w, v[j].z, value.z);
        value.w = fmaf(w, v[j].w, value.w);
      }
    }
    // The split holding the maximum has sum >= 1, so total > 0.
    const float inv = 1.0f / total;
    T* dst = out + (static_cast<int64_t>(q_row) * num_heads + kv_head * group + h) * kHeadDim + d;
    dst[0] = from_float<T>(value.x * inv);
    dst[1] = from_float<T>(value.y * inv);
    dst[2] = from_float<T>(value.z * inv);
    dst[3] = from_float<T>(value.w * inv);
  }
}

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
// counters:     [num_seqs, num_kv_heads], zero before the launch and left zero after it
// (all three unused when num_splits == 1).
// Split k covers visible slots [lo + k * split_len, lo + (k + 1) * split_len) of [lo, p].
// grid: (num_seqs, num_kv_heads, num_splits); block: 128 threads.
template <class T, int kHeadDim, int kGroup>
__global__ void __launch_bounds__(kDecodeThreads, 1)
    paged_decode_kernel(T* __restrict__ out, const T* __restrict__ q, int64_t q_stride, const T* __restrict__ k_cache,
                        const T* __restrict__ v_cache, const int32_t* __restrict__ block_tables, int max_blocks_per_seq,
                        const int32_t* __restrict__ query_start, const int32_t* __restrict__ context_lens,
                        int num_heads, int num_kv_heads, int group, int block_shift, float scale_log2,
                        int sliding_window, int split_len, int num_splits, float* __restrict__ partial_out,
                        float* __restrict__ partial_ml, unsigned* __restrict__ counters) {
  constexpr int kN = 8;                         // elements per lane: one 16-byte vector
  constexpr int kLanesPerSlot = kHeadDim / kN;  // 8 or 16
  constexpr int kSlotsPerWarp = 32 / kLanesPerSlot;
  constexpr int kStep = kDecodeWarps * kSlotsPerWarp;  // slots between a lane group's unrolled loads
  const float kNegInf = -__int_as_float(0x7f800000);

  launch_dependent_grids();
  const int seq = blockIdx.x;
  const int kv_head = blockIdx.y;
  const int split = blockIdx.z;
  // Step inputs first; q and the caches only after the wait.
  const int q_row = query_start[seq];
  const int q_end = query_start[seq + 1];
  const int pos = context_lens[seq] - 1;
  const int lo = sliding_window > 0 ? max(0, pos - sliding_window + 1) : 0;
  const int begin = lo + split * split_len;
  const int end = min(pos + 1, begin + split_len);
  wait_for_prior_grid();
  // Not a decode, or a split past the context (the merge counts only the splits that hold slots).
  if (q_end - q_row != 1 || begin >= end) return;
  const int used = used_splits(lo, pos, split_len, num_splits);

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
        // P.V takes p rounded to T, as the tensor-core kernels (and FlashAttention) do; the
        // row sum keeps the fp32 p.
        const float p_t = to_float(from_float<T>(p));
#pragma unroll
        for (int i = 0; i < kN; ++i) acc[h][i] = fmaf(p_t, to_float(v_vec[u].v[i]), acc[h][i]);
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
    store_decode_result<T, kHeadDim>(out, partial_out, partial_ml, q_row, seq, kv_head * group + h, split, num_heads,
                                     num_splits, used, d, sum > 0.0f ? value / sum : 0.0f, max_all, sum);
  }
  if (used == 1) return;
  merge_splits_if_last<T, kHeadDim, kDecodeThreads>(out, partial_out, partial_ml, counters,
                                                    reinterpret_cast<int*>(&s_max[0][0]), q_row, seq, kv_head, group,
                                                    num_heads, num_kv_heads, num_splits, used);
}

// Tensor-core decode (GQA 3-8, and every group at the small head dims): one CTA per
// (sequence, kv head, split) of kGqaWarps warps. The group's query heads are rows 0..group-1
// of a 16-row m16n8k16 tile (rows 8-15 stay zero), so each K/V row is read once per kv head.
// The warps split the split: warp w takes the 16-slot tiles w, w + kGqaWarps, ... and streams
// them through its own kGqaStages-deep cp.async ring in shared memory (no CTA barrier in the
// loop, kGqaStages - 1 tiles in flight per warp while it computes one). Block-table entries
// are fetched one tile ahead of their copies, one per lane and shuffled to the copying lanes.
// At the end the warps' online softmax states merge through shared memory.
// Sequences with n_new != 1 are left to the prefill kernel.
inline constexpr int kGqaWarps = 4;
inline constexpr int kGqaTileN = 16;  // slots per warp tile: one k16 step of P V
inline constexpr int kGqaStages = 3;
// Split lengths are whole multiples of this, so every warp of a split gets whole tiles.
inline constexpr int kDecodeSplitUnit = kGqaWarps * kGqaTileN;

template <int kHeadDim>
constexpr size_t gqa_decode_smem_bytes() {
  return static_cast<size_t>(kGqaWarps) * kGqaStages * 2 * kGqaTileN * kHeadDim * 2;
}

// out, q, k_cache, v_cache, partial_out, partial_ml, counters, split ranges: as paged_decode_kernel.
// grid: (num_seqs, num_kv_heads, num_splits); block: kGqaWarps * 32 threads; dynamic shared
// memory: gqa_decode_smem_bytes<kHeadDim>() (per warp kGqaStages stages of a K and a V tile,
// reused for the warp's partial state at the end). group <= 8.
template <class T, int kHeadDim>
__global__ void __launch_bounds__(kGqaWarps * 32, 2)
    paged_decode_gqa_kernel(T* __restrict__ out, const T* __restrict__ q, int64_t q_stride,
                            const T* __restrict__ k_cache, const T* __restrict__ v_cache,
                            const int32_t* __restrict__ block_tables, int max_blocks_per_seq,
                            const int32_t* __restrict__ query_start, const int32_t* __restrict__ context_lens,
                            int num_heads, int num_kv_heads, int group, int block_shift, float scale_log2,
                            int sliding_window, int split_len, int num_splits, float* __restrict__ partial_out,
                            float* __restrict__ partial_ml, unsigned* __restrict__ counters) {
  constexpr int kThreads = kGqaWarps * 32;
  constexpr int kChunks = kHeadDim / 8;  // 16-byte chunks per row
  constexpr int kTileElems = kGqaTileN * kHeadDim;
  constexpr int kStageElems = 2 * kTileElems;  // the K tile, then the V tile
  constexpr int kKSteps = kHeadDim / 16;       // k16 steps of Q K^T
  constexpr int kDTiles = kHeadDim / 8;        // n8 tiles of O
  constexpr int kRowsPerCopy = 32 / kChunks;   // tile rows one warp-wide 16-byte copy covers
  constexpr int kCopies = kGqaTileN / kRowsPerCopy;
  // A warp's partial state, in floats at the start of its stages: O [8][kHeadDim], max [8], sum [8].
  constexpr int kWarpFloats = kGqaStages * kStageElems * 2 / 4;
  static_assert(8 * kHeadDim + 16 <= kWarpFloats, "a warp's partial state must fit in its stages");
  static_assert(sizeof(T) == 2, "bf16 or fp16");
  const float kNegInf = -__int_as_float(0x7f800000);

  launch_dependent_grids();
  const int seq = blockIdx.x;
  const int kv_head = blockIdx.y;
  const int split = blockIdx.z;
  // Step inputs, and the block-table entries of the first stages, before the wait; q and the
  // caches after it.
  const int q_row = query_start[seq];
  const int q_end = query_start[seq + 1];
  const int pos = context_lens[seq] - 1;
  const int lo = sliding_window > 0 ? max(0, pos - sliding_window + 1) : 0;
  const int begin = lo + split * split_len;
  const int end = min(pos + 1, begin + split_len);
  // Not a decode, or a split past the context (the merge counts only the splits that hold slots).
  const bool active = q_end - q_row == 1 && begin < end;

  extern __shared__ uint4 smem_raw[];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  T* s_stages = reinterpret_cast<T*>(smem_raw) + warp * kGqaStages * kStageElems;

  const int num_tiles = active ? (end - begin + kGqaTileN - 1) / kGqaTileN : 0;
  const int my_tiles = num_tiles > warp ? (num_tiles - warp + kGqaWarps - 1) / kGqaWarps : 0;
  const int32_t* block_table = block_tables + static_cast<int64_t>(seq) * max_blocks_per_seq;
  const int last_block = (end - 1) >> block_shift;
  const int block_size = 1 << block_shift;
  const int64_t slot_stride = static_cast<int64_t>(num_kv_heads) * kHeadDim;
  const int copy_row = lane / kChunks;
  const int64_t copy_offset = static_cast<int64_t>(kv_head) * kHeadDim + (lane % kChunks) * 8;

  auto tile_start = [&](int i) { return begin + (i * kGqaWarps + warp) * kGqaTileN; };
  // Lane l's block-table entry for the warp's tile i: block (first slot >> block_shift) + l,
  // clamped to the split's last block (a tile spans at most 16 blocks).
  auto table_entry = [&](int i) -> int32_t {
    if (i >= my_tiles) return 0;
    return block_table[min((tile_start(i) >> block_shift) + lane, last_block)];
  };
  // Copies the warp's tile i into stage i % kGqaStages (slots at or past `end` as zeros: their
  // table entries may be garbage, and a zero V keeps masked products finite); one commit group
  // per call, empty past the last tile, so wait_group counts stay uniform.
  auto load_tile = [&](int i, int32_t entry) {
    if (i < my_tiles) {
      const int n0 = tile_start(i);
      const int first_block = n0 >> block_shift;
      T* dst_k = s_stages + (i % kGqaStages) * kStageElems;
      T* dst_v = dst_k + kTileElems;
#pragma unroll
      for (int c = 0; c < kCopies; ++c) {
        const int row = copy_row + c * kRowsPerCopy;
        const int slot = n0 + row;
        const int64_t block = __shfl_sync(0xffffffffu, entry, (slot >> block_shift) - first_block);
        const bool valid = slot < end;
        const int64_t offset = valid ? (block * block_size + (slot & (block_size - 1))) * slot_stride + copy_offset : 0;
        const int e = swizzle<kHeadDim>(row, lane % kChunks);
        cp_async_16(smem_addr(dst_k + e), k_cache + offset, valid);
        cp_async_16(smem_addr(dst_v + e), v_cache + offset, valid);
      }
    }
    cp_async_commit();
  };

  int32_t entries[kGqaStages];
#pragma unroll
  for (int s = 0; s < kGqaStages; ++s) entries[s] = table_entry(s);
  wait_for_prior_grid();
  if (!active) return;
  const int used = used_splits(lo, pos, split_len, num_splits);
#pragma unroll
  for (int s = 0; s < kGqaStages - 1; ++s) load_tile(s, entries[s]);
  int32_t next_entry = entries[kGqaStages - 1];

  // A fragments of Q straight from global memory: this thread's row is query head g of the
  // group (zero past the group), columns 2t, 2t + 1 (a0) and 2t + 8, 2t + 9 (a2) of each k16
  // step; a1 and a3 (rows 8-15) are zero.
  const int g = lane >> 2;
  const int t = lane & 3;
  uint32_t q_frag[kKSteps][2];
  {
    const bool real_row = g < group;
    const T* q_head = q + static_cast<int64_t>(q_row) * q_stride +
                      static_cast<int64_t>(kv_head * group + (real_row ? g : 0)) * kHeadDim + 2 * t;
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
      q_frag[kk][0] = real_row ? *reinterpret_cast<const uint32_t*>(q_head + kk * 16) : 0u;
      q_frag[kk][1] = real_row ? *reinterpret_cast<const uint32_t*>(q_head + kk * 16 + 8) : 0u;
    }
  }

  float o_acc[kDTiles][4];
#pragma unroll
  for (int d = 0; d < kDTiles; ++d) {
#pragma unroll
    for (int e = 0; e < 4; ++e) o_acc[d][e] = 0.0f;
  }
  float row_max = kNegInf;
  float row_sum = 0.0f;  // this thread's share; the quad's four are summed at the end

  for (int i = 0; i < my_tiles; ++i) {
    cp_async_wait<kGqaStages - 2>();  // tile i has landed (this lane's copies) ...
    __syncwarp();                     // ... and every lane's; tile i - 1's stage is free again
    {
      const int32_t entry = next_entry;
      next_entry = table_entry(i + kGqaStages);
      load_tile(i + kGqaStages - 1, entry);
    }
    const T* tile_k = s_stages + (i % kGqaStages) * kStageElems;
    const T* tile_v = tile_k + kTileElems;
    const int n0 = tile_start(i);

    // S = Q K^T (rows: heads; 16 slots as two n8 tiles). K rows are slots with d contiguous:
    // the "col" B operand as stored.
    float s_acc[2][4];
#pragma unroll
    for (int n = 0; n < 2; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) s_acc[n][e] = 0.0f;
    }
    if constexpr (kKSteps == 1) {  // head_dim 16
      const uint32_t a[4] = {q_frag[0][0], 0u, q_frag[0][1], 0u};
#pragma unroll
      for (int n = 0; n < 2; ++n) {
        uint32_t b[2];
        ldmatrix_x2(b, smem_addr(tile_k + swizzle<kHeadDim>(n * 8 + (lane & 7), (lane >> 3) & 1)));
        mma_16816<T>(s_acc[n], a, b[0], b[1]);
      }
    } else {
#pragma unroll
      for (int kk = 0; kk < kKSteps; kk += 2) {
        const uint32_t a0[4] = {q_frag[kk][0], 0u, q_frag[kk][1], 0u};
        const uint32_t a1[4] = {q_frag[kk + 1][0], 0u, q_frag[kk + 1][1], 0u};
#pragma unroll
        for (int n = 0; n < 2; ++n) {
          uint32_t b[4];  // (k step kk: lo, hi), (kk + 1: lo, hi)
          ldmatrix_x4(b, smem_addr(tile_k + swizzle<kHeadDim>(n * 8 + (lane & 7), kk * 2 + (lane >> 3))));
          mma_16816<T>(s_acc[n], a0, b[0], b[1]);
          mma_16816<T>(s_acc[n], a1, b[2], b[3]);
        }
      }
    }

    // Online softmax of row g over slots n0 + 8n + 2t + e; only a split's last tile can reach
    // past `end`. The quad holds all 16 slots, slot n0 < end among them, so the max is finite.
    const bool partial_tile = n0 + kGqaTileN > end;
    float tile_max = kNegInf;
#pragma unroll
    for (int n = 0; n < 2; ++n) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        float score = s_acc[n][e] * scale_log2;
        if (partial_tile && n0 + n * 8 + 2 * t + e >= end) score = kNegInf;
        s_acc[n][e] = score;
        tile_max = fmaxf(tile_max, score);
      }
    }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
    const float new_max = fmaxf(row_max, tile_max);
    const float rescale = exp2f(row_max - new_max);  // 0 on the first tile (row_max -inf)
    row_max = new_max;
    float p[2][2];
    float p_sum = 0.0f;
#pragma unroll
    for (int n = 0; n < 2; ++n) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        p[n][e] = exp2f(s_acc[n][e] - new_max);
        p_sum += p[n][e];
      }
    }
    row_sum = row_sum * rescale + p_sum;
#pragma unroll
    for (int d = 0; d < kDTiles; ++d) {
      o_acc[d][0] *= rescale;
      o_acc[d][1] *= rescale;
    }

    // O += P V. The S accumulators of the two n8 tiles are the A fragment of one k16 step; V
    // rows are slots (k) with d contiguous, so ldmatrix.trans yields the "col" B operand.
    const uint32_t p_frag[4] = {pack2<T>(p[0][0], p[0][1]), 0u, pack2<T>(p[1][0], p[1][1]), 0u};
#pragma unroll
    for (int d = 0; d < kDTiles; d += 2) {
      uint32_t b[4];  // (d tile d: slots lo, hi), (d + 1: lo, hi)
      ldmatrix_x4_trans(b, smem_addr(tile_v + swizzle<kHeadDim>((lane & 7) + ((lane >> 3) & 1) * 8, d + (lane >> 4))));
      mma_16816<T>(o_acc[d], p_frag, b[0], b[1]);
      mma_16816<T>(o_acc[d + 1], p_frag, b[2], b[3]);
    }
  }

  // The warp's state -> the start of its own stages (all its copies done, all lanes past
  // their last ldmatrix).
  cp_async_wait<0>();
  __syncwarp();
  row_sum += __shfl_xor_sync(0xffffffffu, row_sum, 1);
  row_sum += __shfl_xor_sync(0xffffffffu, row_sum, 2);
  float* s_state = reinterpret_cast<float*>(s_stages);
  if (g < group) {
#pragma unroll
    for (int d = 0; d < kDTiles; ++d) {
      *reinterpret_cast<float2*>(s_state + g * kHeadDim + d * 8 + 2 * t) = make_float2(o_acc[d][0], o_acc[d][1]);
    }
    if (t == 0) {
      s_state[8 * kHeadDim + g] = row_max;
      s_state[8 * kHeadDim + 8 + g] = row_sum;
    }
  }
  __syncthreads();

  // Merge the warps (a warp without tiles has max -inf and weight 0).
  const float* s_all = reinterpret_cast<const float*>(smem_raw);
  for (int e = threadIdx.x; e < group * kHeadDim; e += kThreads) {
    const int h = e / kHeadDim;
    const int d = e % kHeadDim;
    float max_all = kNegInf;
#pragma unroll
    for (int w = 0; w < kGqaWarps; ++w) max_all = fmaxf(max_all, s_all[w * kWarpFloats + 8 * kHeadDim + h]);
    float sum = 0.0f, value = 0.0f;
#pragma unroll
    for (int w = 0; w < kGqaWarps; ++w) {
      const float* state = s_all + w * kWarpFloats;
      const float warp_max = state[8 * kHeadDim + h];
      const float weight = warp_max == kNegInf ? 0.0f : exp2f(warp_max - max_all);
      sum += state[8 * kHeadDim + 8 + h] * weight;
      value += state[h * kHeadDim + d] * weight;
    }
    store_decode_result<T, kHeadDim>(out, partial_out, partial_ml, q_row, seq, kv_head * group + h, split, num_heads,
                                     num_splits, used, d, sum > 0.0f ? value / sum : 0.0f, max_all, sum);
  }
  if (used == 1) return;
  merge_splits_if_last<T, kHeadDim, kThreads>(out, partial_out, partial_ml, counters, reinterpret_cast<int*>(smem_raw),
                                              q_row, seq, kv_head, group, num_heads, num_kv_heads, num_splits, used);
}

}  // namespace strata::cuda::paged
