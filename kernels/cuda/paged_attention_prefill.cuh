// Paged prefill attention on the tensor cores: FlashAttention-2 (Dao 2023, Alg. 1 and §3.1-3.2)
// over K/V tiles gathered through the block table. 128-row query tiles, 4 warps of 32 rows, so
// each K/V fragment read from shared memory feeds two m16n8k16 row tiles. Included by
// paged_attention.cu only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/cuda/paged_attention_mma.cuh"

namespace strata::cuda::paged {

// A CTA: 4 warps x 32 query rows (two m16 tiles per warp) against double-buffered K/V tiles of
// kPrefillBlockN slots: 64 at head_dim 128 (4 warps keep the O accumulators of 32 rows x 128
// dims, 128 fp32 per thread, in registers, two CTAs per SM at 96 KiB of shared memory each),
// 128 at the smaller head dims, whose O leaves room for S of 32 x 128. The bf16 rounding of P
// depends on the row max seen so far, so on the K/V blocks and their order: up to head_dim 64
// these are the 128-slot blocks of cuDNN's attention, which transformers' sdpa takes on an
// H200 (sdpa_backends.py), walked in its order, the first block first, with cuDNN's rounding
// of the exponent and the normalization (below). There the output comes bit for bit equal to
// cuDNN's on 1200 of 1200 rows (random inputs, 300 tokens, head_dim 64,
// tests/bench/attention_vs_flash.py) and on all 8,864 of the default model's attention rows
// (attention_on_model.py); walked last first, as FlashAttention-2 does, every row that sees
// more than one block differed (513 of 1200).
inline constexpr int kPrefillWarps = 4;
inline constexpr int kPrefillWarpRows = 32;
inline constexpr int kPrefillBlockM = kPrefillWarps * kPrefillWarpRows;

template <int kHeadDim>
inline constexpr int kPrefillBlockN = kHeadDim <= 64 ? 128 : 64;

template <int kHeadDim>
constexpr size_t prefill_smem_bytes() {
  return static_cast<size_t>(kPrefillBlockM + 4 * kPrefillBlockN<kHeadDim>) * kHeadDim * 2;
}

// 2^x on the SFU; inputs are <= 0 (scores minus their row max), -inf gives 0.
__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// 1/x on the SFU (x > 0 here: a row sum).
__device__ __forceinline__ float rcp_approx(float x) {
  float y;
  asm("rcp.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// A CTA covers 128 query rows of one (sequence, kv head); a row is a (token, query head of this
// kv head) pair, row = token * group + head_in_group, so the group's query heads share every
// K/V tile (GQA). Token j of a sequence sits at slot p = context_len - n_new + j and attends to
// slots [lo, p], lo = max(0, p - sliding_window + 1) with a window, else 0. Only sequences with
// n_new >= 2 are handled (decodes take the decode kernels).
//
// Per K/V tile: S = Q K^T (Q re-read from shared memory, K fragments shared by the warp's two
// row tiles), the causal/window mask only where the tile crosses a row's [lo, p] edge, online
// softmax on raw scores with the scale applied before exp2 (O is rescaled only
// when some row's max grew), P rounded to T in registers as the A operand of O += P V.
// One barrier per tile: after it every warp is done with the previous tile, so the copy of the
// next tile into that stage can start and overlaps this tile's math.
//
// out:          [num_tokens, num_heads, kHeadDim]
// q:            [num_tokens, num_heads, kHeadDim], token rows q_stride elements apart
// k_cache, v_cache: [num_blocks, block_size, num_kv_heads, kHeadDim]
// block_tables: [num_seqs, max_blocks_per_seq]; query_start: [num_seqs + 1]; context_lens: [num_seqs]
// grid: (num_seqs, num_kv_heads, ceil(max_query_len * group / 128)), row tiles in reverse so the
// longest (last) ones start first; block: 128 threads; dynamic shared memory:
// prefill_smem_bytes<kHeadDim>() (Q tile, then 2 stages of K and of V).
// scale_log2 = scale * log2(e) > 0: scores are kept in the exp2 domain.
template <class T, int kHeadDim>
__global__ void __launch_bounds__(kPrefillWarps * 32, 2)
    paged_prefill_kernel(T* __restrict__ out, const T* __restrict__ q, int64_t q_stride, const T* __restrict__ k_cache,
                         const T* __restrict__ v_cache, const int32_t* __restrict__ block_tables,
                         int max_blocks_per_seq, const int32_t* __restrict__ query_start,
                         const int32_t* __restrict__ context_lens, int num_heads, int num_kv_heads, int group,
                         int block_shift, float scale_log2, int sliding_window) {
  constexpr int kThreads = kPrefillWarps * 32;
  constexpr int kBlockM = kPrefillBlockM;
  constexpr int kBlockN = kPrefillBlockN<kHeadDim>;
  constexpr int kMTiles = kPrefillWarpRows / 16;  // m16 tiles per warp
  constexpr int kChunks = kHeadDim / 8;           // 16-byte chunks per row
  constexpr int kTileElems = kBlockN * kHeadDim;
  // The math runs on sub-tiles of kSubN slots: 32 at head_dim 128, where S of 32 x 64 would not
  // fit the registers beside O, else the whole tile.
  constexpr int kSubN = kHeadDim >= 128 ? 32 : kBlockN;
  constexpr int kNTiles = kSubN / 8;      // n8 tiles of S
  constexpr int kDTiles = kHeadDim / 8;   // n8 tiles of O
  constexpr int kKSteps = kHeadDim / 16;  // k16 steps of Q K^T
  // The K/V copy: thread t moves chunk t % kChunks of rows t / kChunks + pass * kRowsPerPass.
  // kRowsPerPass is a multiple of 8, so a thread's swizzle is the same in every pass.
  constexpr int kRowsPerPass = kThreads / kChunks;
  constexpr int kPasses = kBlockN / kRowsPerPass;
  static_assert(kRowsPerPass % 8 == 0 && kBlockN % kRowsPerPass == 0, "K/V copy layout");
  static_assert(kDTiles % 2 == 0 && kNTiles % 2 == 0, "fragments are loaded in pairs");
  const float kNegInf = -__int_as_float(0x7f800000);

  const int seq = blockIdx.x;
  const int kv_head = blockIdx.y;
  const int q_begin = query_start[seq];
  const int n_new = query_start[seq + 1] - q_begin;
  if (n_new <= 1) return;
  const int row0 = static_cast<int>(gridDim.z - 1 - blockIdx.z) * kBlockM;
  if (row0 >= n_new * group) return;

  extern __shared__ uint4 smem_raw[];
  T* s_q = reinterpret_cast<T*>(smem_raw);
  T* s_k = s_q + kBlockM * kHeadDim;  // 2 stages
  T* s_v = s_k + 2 * kTileElems;      // 2 stages

  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int first_pos = context_lens[seq] - n_new;  // slot of new token 0
  const int j_first = row0 / group;
  const int j_last = min(n_new - 1, (row0 + kBlockM - 1) / group);
  const int kv_end = first_pos + j_last + 1;
  const int kv_begin = sliding_window > 0 ? max(0, first_pos + j_first - sliding_window + 1) : 0;
  const int num_kv_tiles = (kv_end - kv_begin + kBlockN - 1) / kBlockN;

  // Q tile -> shared (rows past the sequence are zeros).
  for (int idx = tid; idx < kBlockM * kChunks; idx += kThreads) {
    const int r = idx / kChunks;
    const int c = idx % kChunks;
    const int flat = row0 + r;
    const int j = flat / group;
    const bool valid = j < n_new;
    const T* src = q;
    if (valid) {
      const int head = kv_head * group + (flat - j * group);
      src = q + static_cast<int64_t>(q_begin + j) * q_stride + static_cast<int64_t>(head) * kHeadDim + c * 8;
    }
    cp_async_16(smem_addr(s_q + swizzle<kHeadDim>(r, c)), src, valid);
  }

  // K/V tile of slots [n0, n0 + kBlockN) -> stage; slots at or past kv_end are zeros (their block
  // table entries may be garbage, and a zero V keeps masked products finite).
  // Cache slots are numbered block * block_size + offset in 32 bits (2^32 slots of 8 heads of
  // 128 are 16 TiB of cache); their element offsets are 64-bit.
  const int32_t* block_table = block_tables + static_cast<int64_t>(seq) * max_blocks_per_seq;
  const uint32_t slot_mask = (1u << block_shift) - 1;
  const uint32_t slot_stride = static_cast<uint32_t>(num_kv_heads) * kHeadDim;
  const int copy_row = tid / kChunks;
  const int copy_chunk = tid % kChunks;
  const uint32_t copy_offset = static_cast<uint32_t>(kv_head) * kHeadDim + copy_chunk * 8;
  const uint32_t k_dst = smem_addr(s_k + swizzle<kHeadDim>(copy_row, copy_chunk));
  constexpr uint32_t kVBytes = 2 * kTileElems * sizeof(T);  // s_v - s_k
  auto load_kv_tile = [&](int n0, int stage) {
#pragma unroll
    for (int pass = 0; pass < kPasses; ++pass) {
      const int slot = n0 + copy_row + pass * kRowsPerPass;
      const bool valid = slot < kv_end;
      uint64_t offset = 0;
      if (valid) {
        const uint32_t block = static_cast<uint32_t>(__ldg(block_table + (slot >> block_shift)));
        const uint32_t cache_slot = (block << block_shift) | (static_cast<uint32_t>(slot) & slot_mask);
        offset = static_cast<uint64_t>(cache_slot) * slot_stride + copy_offset;
      }
      const uint32_t dst =
          k_dst + static_cast<uint32_t>((stage * kTileElems + pass * kRowsPerPass * kHeadDim) * sizeof(T));
      cp_async_16(dst, k_cache + offset, valid);
      cp_async_16(dst + kVBytes, v_cache + offset, valid);
    }
  };

  // Tiles are walked from the first to the last (the diagonal), as cuDNN's attention does.
  load_kv_tile(kv_begin, 0);
  cp_async_commit();  // with the Q tile

  // This thread's rows: in m tile m, a = lane / 4 and b = a + 8 (mma accumulator layout).
  const int quad_row = lane >> 2;
  const int quad_col = (lane & 3) * 2;
  const int warp_row0 = warp * kPrefillWarpRows;
  // Visible slots [lo, p] of the row `r` rows past this thread's first one; p = -1 for the
  // padding rows past the sequence (every slot masked). Recomputed on the masked tiles only,
  // which keeps the registers for the accumulators.
  auto row_bounds = [&](int r, int& pos, int& lo) {
    const int j = (row0 + warp_row0 + quad_row + r) / group;
    pos = j < n_new ? first_pos + j : -1;
    lo = sliding_window > 0 ? max(0, pos - sliding_window + 1) : 0;
  };
  int max_pos = -1, min_pos = INT32_MAX, max_lo = 0, min_lo = INT32_MAX;
#pragma unroll
  for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      int pos, lo;
      row_bounds(m * 16 + half * 8, pos, lo);
      max_pos = max(max_pos, pos);
      min_pos = min(min_pos, pos);
      max_lo = max(max_lo, lo);
      min_lo = min(min_lo, lo);
    }
  }
  // Warp-wide bounds: a tile past every row's p or before every row's lo is skipped; a tile
  // inside every row's [lo, p] needs no mask.
  const int warp_max_pos = __reduce_max_sync(0xffffffffu, max_pos);
  const int warp_min_pos = __reduce_min_sync(0xffffffffu, min_pos);
  const int warp_max_lo = __reduce_max_sync(0xffffffffu, max_lo);
  const int warp_min_lo = __reduce_min_sync(0xffffffffu, min_lo);

  float o_acc[kMTiles][kDTiles][4];
#pragma unroll
  for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
    for (int d = 0; d < kDTiles; ++d) {
#pragma unroll
      for (int e = 0; e < 4; ++e) o_acc[m][d][e] = 0.0f;
    }
  }
  float row_max[kMTiles][2];  // raw scores (scale not applied)
  float row_sum[kMTiles][2];  // this thread's share; the quad's four are summed at the end
#pragma unroll
  for (int m = 0; m < kMTiles; ++m) {
    row_max[m][0] = row_max[m][1] = kNegInf;
    row_sum[m][0] = row_sum[m][1] = 0.0f;
  }

  T* warp_q = s_q + warp_row0 * kHeadDim;  // read only by this warp
  for (int tile = 0; tile < num_kv_tiles; ++tile) {
    const int n0 = kv_begin + tile * kBlockN;
    cp_async_wait<0>();
    __syncthreads();  // tile's copy visible to all; every warp is done with the other stage
    if (tile + 1 < num_kv_tiles) {
      load_kv_tile(n0 + kBlockN, (tile + 1) & 1);
      cp_async_commit();
    }
    if (n0 > warp_max_pos || n0 + kBlockN - 1 < warp_min_lo) continue;
#pragma unroll
    for (int sub = 0; sub < kBlockN / kSubN; ++sub) {
      const int ns = n0 + sub * kSubN;  // first slot of the sub-tile
      if (ns > warp_max_pos || ns + kSubN - 1 < warp_min_lo) continue;
      const T* tile_k = s_k + (tile & 1) * kTileElems + sub * kSubN * kHeadDim;
      const T* tile_v = s_v + (tile & 1) * kTileElems + sub * kSubN * kHeadDim;

      // S = Q K^T (32 x kSubN per warp). K rows are n, d contiguous: the "col" B operand as stored.
      float s_acc[kMTiles][kNTiles][4];
#pragma unroll
      for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
        for (int n = 0; n < kNTiles; ++n) {
#pragma unroll
          for (int e = 0; e < 4; ++e) s_acc[m][n][e] = 0.0f;
        }
      }
#pragma unroll
      for (int kk = 0; kk < kKSteps; ++kk) {
        // A fragments of Q: matrices (rows 0-7 | 8-15) x (k 0-7 | 8-15).
        uint32_t a[kMTiles][4];
#pragma unroll
        for (int m = 0; m < kMTiles; ++m) {
          ldmatrix_x4(a[m], smem_addr(warp_q + swizzle<kHeadDim>(m * 16 + (lane & 15), kk * 2 + (lane >> 4))));
        }
#pragma unroll
        for (int n = 0; n < kNTiles; n += 2) {
          uint32_t b[4];  // (n tile n: k lo, hi), (n + 1: k lo, hi)
          ldmatrix_x4(b, smem_addr(tile_k + swizzle<kHeadDim>(n * 8 + (lane >> 4) * 8 + (lane & 7),
                                                              kk * 2 + ((lane >> 3) & 1))));
#pragma unroll
          for (int m = 0; m < kMTiles; ++m) {
            mma_16816<T>(s_acc[m][n], a[m], b[0], b[1]);
            mma_16816<T>(s_acc[m][n + 1], a[m], b[2], b[3]);
          }
        }
      }

      // Mask only on tiles that cross some row's [lo, p] edge (the diagonal, the window start).
      if (ns + kSubN - 1 > warp_min_pos || ns < warp_max_lo) {
#pragma unroll
        for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
          for (int half = 0; half < 2; ++half) {
            int pos, lo;
            row_bounds(m * 16 + half * 8, pos, lo);
#pragma unroll
            for (int n = 0; n < kNTiles; ++n) {
#pragma unroll
              for (int e = 2 * half; e < 2 * half + 2; ++e) {
                const int slot = ns + n * 8 + quad_col + (e & 1);
                if (slot > pos || slot < lo) s_acc[m][n][e] = kNegInf;
              }
            }
          }
        }
      }

      // Online softmax: new row max, rescale of O and the sum only when a max grew.
      float rescale[kMTiles][2], neg_offset[kMTiles][2];
      bool max_grew = false;
#pragma unroll
      for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          float tile_max = kNegInf;
#pragma unroll
          for (int n = 0; n < kNTiles; ++n) {
            tile_max = fmaxf(tile_max, fmaxf(s_acc[m][n][2 * half], s_acc[m][n][2 * half + 1]));
          }
          tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
          tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
          const float new_max = fmaxf(row_max[m][half], tile_max);
          // A row with nothing visible yet keeps max -inf; offset 0 keeps exp2 away from inf - inf.
          const float offset = new_max == kNegInf ? 0.0f : new_max * scale_log2;
          max_grew |= new_max != row_max[m][half];
          rescale[m][half] = exp2_approx(__fsub_rn(__fmul_rn(row_max[m][half], scale_log2), offset));
          neg_offset[m][half] = -offset;
          row_max[m][half] = new_max;
          row_sum[m][half] *= rescale[m][half];
        }
      }
      if (__any_sync(0xffffffffu, max_grew)) {
#pragma unroll
        for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
          for (int d = 0; d < kDTiles; ++d) {
            o_acc[m][d][0] *= rescale[m][0];
            o_acc[m][d][1] *= rescale[m][0];
            o_acc[m][d][2] *= rescale[m][1];
            o_acc[m][d][3] *= rescale[m][1];
          }
        }
      }

      // P = exp2(S * scale_log2 - max * scale_log2), rounded to T: the S accumulators of n tiles
      // 2k, 2k+1 are the A fragment of k16 step k of P V. The product and the difference are
      // rounded apart (the _rn intrinsics: nvcc would fuse them into one FFMA), as cuDNN's
      // attention rounds them: on the default model's own attention inputs that took the rows
      // equal to cuDNN's from 8,828 to 8,859 of 8,864 (attention_on_model.py).
      uint32_t p_frag[kMTiles][kNTiles / 2][4];
#pragma unroll
      for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
        for (int n = 0; n < kNTiles; ++n) {
          float p[4];
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            p[e] = exp2_approx(__fadd_rn(__fmul_rn(s_acc[m][n][e], scale_log2), neg_offset[m][e >> 1]));
            row_sum[m][e >> 1] += p[e];
          }
          p_frag[m][n / 2][(n & 1) * 2] = pack2<T>(p[0], p[1]);
          p_frag[m][n / 2][(n & 1) * 2 + 1] = pack2<T>(p[2], p[3]);
        }
      }

      // O += P V. V rows are slots (k) with d contiguous, so ldmatrix.trans yields the "col" B
      // operand; each V fragment feeds both row tiles.
#pragma unroll
      for (int kk = 0; kk < kSubN / 16; ++kk) {
#pragma unroll
        for (int d = 0; d < kDTiles; d += 2) {
          uint32_t b[4];  // (d tile d: slots lo, hi), (d + 1: lo, hi)
          ldmatrix_x4_trans(
              b, smem_addr(tile_v + swizzle<kHeadDim>(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, d + (lane >> 4))));
#pragma unroll
          for (int m = 0; m < kMTiles; ++m) {
            mma_16816<T>(o_acc[m][d], p_frag[m][kk], b[0], b[1]);
            mma_16816<T>(o_acc[m][d + 1], p_frag[m][kk], b[2], b[3]);
          }
        }
      }
    }
  }

  // Normalize into the warp's own Q rows of shared memory (no other warp reads them), then
  // store whole 16-byte chunks: a row's group of heads is contiguous in out.
  __syncwarp();
#pragma unroll
  for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      // The quad's four shares summed as (t0 + t1) + (t2 + t3) and the reciprocal by the SFU
      // (rcp.approx), as cuDNN's attention does: each took rows of the default model's attention
      // to cuDNN's bits that the other left (8,859 -> 8,862 and 8,861 of 8,864 rows).
      float sum = row_sum[m][half];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const float inv_sum = sum > 0.0f ? rcp_approx(sum) : 0.0f;
      const int r = m * 16 + quad_row + half * 8;
#pragma unroll
      for (int d = 0; d < kDTiles; ++d) {
        *reinterpret_cast<uint32_t*>(warp_q + swizzle<kHeadDim>(r, d) + quad_col) =
            pack2<T>(o_acc[m][d][2 * half] * inv_sum, o_acc[m][d][2 * half + 1] * inv_sum);
      }
    }
  }
  __syncwarp();
  for (int idx = lane; idx < kPrefillWarpRows * kChunks; idx += 32) {
    const int r = idx / kChunks;
    const int c = idx % kChunks;
    const int flat = row0 + warp_row0 + r;
    const int j = flat / group;
    if (j >= n_new) continue;
    const int head = kv_head * group + (flat - j * group);
    T* dst = out + (static_cast<int64_t>(q_begin + j) * num_heads + head) * kHeadDim + c * 8;
    *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(warp_q + swizzle<kHeadDim>(r, c));
  }
}

}  // namespace strata::cuda::paged
