// Paged attention on the tensor cores: FlashAttention-2-style online softmax (Dao 2023, §3.1)
// over K/V tiles gathered through the block table, mma.sync m16n8k16 with fp32 accumulation,
// and the fragment helpers that paged_attention_prefill.cuh shares. The kernel template runs
// the GQA decodes (1 warp, the query heads of a kv head as rows, split-KV); prefill chunks take
// paged_prefill_kernel (128-row tiles). Included by paged_attention.cu only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cuda/common.cuh"

namespace strata::cuda::paged {

// Tile shapes: 16 query rows per warp (1 warp for decode), K/V tiles of 64 slots
// double-buffered in shared memory.
inline constexpr int kDecodeMmaWarps = 1;
inline constexpr int kMmaBlockN = 64;

template <int kHeadDim, int kWarps>
constexpr size_t mma_smem_bytes() {
  return static_cast<size_t>(kWarps * 16 + 4 * kMmaBlockN) * kHeadDim * 2;
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global->shared copy; valid == false writes 16 zero bytes and reads nothing.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, bool valid) {
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// d += a * b for one m16n8k16 tile: a row-major 16x16, b "col" 16x8, d fp32 16x8.
template <class T>
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// Two fp32 values as a packed pair of T, the first in the low half.
template <class T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  uint32_t bits;
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    memcpy(&bits, &v, 4);
  } else {
    const __half2 v = __floats2half2_rn(lo, hi);
    memcpy(&bits, &v, 4);
  }
  return bits;
}

// Element offset of 16-byte chunk `chunk` of row `row` in a [rows, kHeadDim] tile. Chunks
// are XOR-swizzled by the row's low 3 bits (fewer when a row has fewer than 8 chunks) so the
// 8 rows an ldmatrix reads hit different bank groups.
template <int kHeadDim>
__device__ __forceinline__ int swizzle(int row, int chunk) {
  constexpr int kMask = (kHeadDim / 8 < 8 ? kHeadDim / 8 : 8) - 1;
  return row * kHeadDim + ((chunk ^ (row & kMask)) << 3);
}

// A CTA of kWarps warps covers 16 * kWarps query rows of one (sequence, kv head). A row is a
// (token, query head of this kv head) pair, row = token * group + head_in_group, so the query
// heads of a kv head share every K/V tile (GQA). Token j of a sequence sits at slot
// p = context_len - n_new + j and attends to slots [lo, p], lo = max(0, p - sliding_window + 1)
// with a window, else 0.
// kDecode == false (prefill): sequences with n_new >= 2; blockIdx.z is the row tile.
// kDecode == true: sequences with n_new == 1 (rows = the group's heads, group <= 16);
// blockIdx.z is the split, covering visible slots [lo + z * split_len, lo + (z + 1) * split_len);
// with num_splits > 1 the split writes partial_out / partial_ml (as paged_decode_kernel).
//
// out:          [num_tokens, num_heads, kHeadDim]
// q:            [num_tokens, num_heads, kHeadDim], token rows q_stride elements apart
// k_cache, v_cache: [num_blocks, block_size, num_kv_heads, kHeadDim]
// block_tables: [num_seqs, max_blocks_per_seq]; query_start: [num_seqs + 1]; context_lens: [num_seqs]
// grid: (num_seqs, num_kv_heads, ceil(max_query_len * group / (16 * kWarps)) or num_splits);
// block: 32 * kWarps threads; dynamic shared memory: mma_smem_bytes<kHeadDim, kWarps>()
// (Q tile + 2 stages of K and V tiles).
// scale_log2 = scale * log2(e): scores are kept in the exp2 domain.
template <class T, int kHeadDim, int kWarps, bool kDecode>
__global__ void __launch_bounds__(kWarps * 32, 1)
    paged_mma_attention_kernel(T* __restrict__ out, const T* __restrict__ q, int64_t q_stride,
                               const T* __restrict__ k_cache, const T* __restrict__ v_cache,
                               const int32_t* __restrict__ block_tables, int max_blocks_per_seq,
                               const int32_t* __restrict__ query_start, const int32_t* __restrict__ context_lens,
                               int num_heads, int num_kv_heads, int group, int block_shift, float scale_log2,
                               int sliding_window, int split_len, int num_splits, float* __restrict__ partial_out,
                               float* __restrict__ partial_ml) {
  constexpr int kThreads = kWarps * 32;
  constexpr int kBlockM = kWarps * 16;
  constexpr int kChunks = kHeadDim / 8;  // 16-byte chunks per row
  constexpr int kTileElems = kMmaBlockN * kHeadDim;
  constexpr int kNTiles = kMmaBlockN / 8;  // n8 tiles of S per warp
  constexpr int kDTiles = kHeadDim / 8;    // n8 tiles of O per warp
  constexpr int kKSteps = kHeadDim / 16;   // k16 steps of Q K^T
  const float kNegInf = -__int_as_float(0x7f800000);

  const int seq = blockIdx.x;
  const int kv_head = blockIdx.y;
  const int q_begin = query_start[seq];
  const int n_new = query_start[seq + 1] - q_begin;
  if (kDecode ? n_new != 1 : n_new <= 1) return;
  // Prefill: highest tiles first; under the causal mask they see the most slots, so they
  // start early and the short ones fill the tail.
  const int row0 = kDecode ? 0 : static_cast<int>(gridDim.z - 1 - blockIdx.z) * kBlockM;
  if (row0 >= n_new * group) return;

  extern __shared__ uint4 smem_raw[];
  T* s_q = reinterpret_cast<T*>(smem_raw);
  T* s_k = s_q + kBlockM * kHeadDim;  // 2 stages
  T* s_v = s_k + 2 * kTileElems;      // 2 stages

  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int context_len = context_lens[seq];
  const int first_pos = context_len - n_new;  // slot of new token 0
  const int j_first = row0 / group;
  const int j_last = min(n_new - 1, (row0 + kBlockM - 1) / group);
  int kv_end = first_pos + j_last + 1;
  int kv_begin = sliding_window > 0 ? max(0, first_pos + j_first - sliding_window + 1) : 0;
  const int split = kDecode ? static_cast<int>(blockIdx.z) : 0;
  if (kDecode) {
    kv_begin += split * split_len;
    kv_end = min(kv_end, kv_begin + split_len);
    if (kv_begin >= kv_end) return;  // the combine kernel reads only the splits that hold slots
  }
  const int num_kv_tiles = (kv_end - kv_begin + kMmaBlockN - 1) / kMmaBlockN;
  const int32_t* block_table = block_tables + static_cast<int64_t>(seq) * max_blocks_per_seq;
  const int block_size = 1 << block_shift;
  const int64_t slot_stride = static_cast<int64_t>(num_kv_heads) * kHeadDim;
  const int64_t head_offset = static_cast<int64_t>(kv_head) * kHeadDim;

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

  // K/V tile of slots [n0, n0 + 64) -> stage; slots at or past kv_end are zeros (their block
  // table entries may be garbage, and a zero V keeps masked products finite).
  auto load_kv_tile = [&](int n0, int stage) {
    T* dst_k = s_k + stage * kTileElems;
    T* dst_v = s_v + stage * kTileElems;
    for (int idx = tid; idx < kMmaBlockN * kChunks; idx += kThreads) {
      const int i = idx / kChunks;
      const int c = idx % kChunks;
      const int slot = n0 + i;
      const bool valid = slot < kv_end;
      int64_t offset = 0;
      if (valid) {
        const int64_t block = block_table[slot >> block_shift];
        offset = (block * block_size + (slot & (block_size - 1))) * slot_stride + head_offset + c * 8;
      }
      const int e = swizzle<kHeadDim>(i, c);
      cp_async_16(smem_addr(dst_k + e), k_cache + offset, valid);
      cp_async_16(smem_addr(dst_v + e), v_cache + offset, valid);
    }
  };

  load_kv_tile(kv_begin, 0);
  cp_async_commit();

  // This thread's two rows of the warp's 16: a = lane / 4, b = a + 8 (mma accumulator layout).
  const int quad_row = lane >> 2;
  const int quad_col = (lane & 3) * 2;
  int row_pos[2], row_lo[2], row_token[2], row_head[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int flat = row0 + warp * 16 + quad_row + half * 8;
    const int j = flat / group;
    row_token[half] = j;
    row_head[half] = kv_head * group + (flat - j * group);
    const int pos = j < n_new ? first_pos + j : -1;  // -1: padding row, every slot masked
    row_lo[half] = sliding_window > 0 ? max(0, pos - sliding_window + 1) : 0;
    // A split ends before p: the zero-filled slots past kv_end must be masked too.
    row_pos[half] = min(pos, kv_end - 1);
  }
  // Warp-wide bounds: a K/V tile past every row's p (or before every row's lo) is skipped.
  const int warp_max_pos = __reduce_max_sync(0xffffffffu, max(row_pos[0], row_pos[1]));
  const int warp_min_lo = __reduce_min_sync(0xffffffffu, min(row_lo[0], row_lo[1]));

  uint32_t q_frag[kKSteps][4];
  float o_acc[kDTiles][4];
#pragma unroll
  for (int d = 0; d < kDTiles; ++d) {
#pragma unroll
    for (int e = 0; e < 4; ++e) o_acc[d][e] = 0.0f;
  }
  float row_max[2] = {kNegInf, kNegInf};
  float row_sum[2] = {0.0f, 0.0f};  // this thread's share; the quad's four are summed at the end

  for (int tile = 0; tile < num_kv_tiles; ++tile) {
    const int n0 = kv_begin + tile * kMmaBlockN;
    if (tile + 1 < num_kv_tiles) {
      load_kv_tile(n0 + kMmaBlockN, (tile + 1) & 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();

    if (tile == 0) {
      // A fragments of Q: matrices (rows 0-7 | 8-15) x (k 0-7 | 8-15), one ldmatrix.x4 per k16 step.
#pragma unroll
      for (int kk = 0; kk < kKSteps; ++kk) {
        ldmatrix_x4(q_frag[kk], smem_addr(s_q + swizzle<kHeadDim>(warp * 16 + (lane & 15), kk * 2 + (lane >> 4))));
      }
    }

    const bool skip = n0 > warp_max_pos || n0 + kMmaBlockN - 1 < warp_min_lo;
    if (!skip) {
      const T* tile_k = s_k + (tile & 1) * kTileElems;
      const T* tile_v = s_v + (tile & 1) * kTileElems;

      // S = Q K^T (16 x 64 per warp). K rows are n, d contiguous: the "col" B operand as stored.
      float s_acc[kNTiles][4];
#pragma unroll
      for (int n = 0; n < kNTiles; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) s_acc[n][e] = 0.0f;
      }
      if constexpr (kKSteps == 1) {  // head_dim 16
#pragma unroll
        for (int n = 0; n < kNTiles; ++n) {
          uint32_t b[2];  // k 0-7, 8-15 (lanes 0-15 give the addresses)
          ldmatrix_x2(b, smem_addr(tile_k + swizzle<kHeadDim>(n * 8 + (lane & 7), (lane >> 3) & 1)));
          mma_16816<T>(s_acc[n], q_frag[0], b[0], b[1]);
        }
      } else {
#pragma unroll
        for (int kk = 0; kk < kKSteps; kk += 2) {
#pragma unroll
          for (int n = 0; n < kNTiles; ++n) {
            uint32_t b[4];  // (k step kk: lo, hi), (kk + 1: lo, hi)
            ldmatrix_x4(b, smem_addr(tile_k + swizzle<kHeadDim>(n * 8 + (lane & 7), kk * 2 + (lane >> 3))));
            mma_16816<T>(s_acc[n], q_frag[kk], b[0], b[1]);
            mma_16816<T>(s_acc[n], q_frag[kk + 1], b[2], b[3]);
          }
        }
      }

      // Scale, mask, online softmax (per row: new max, rescale of the running sum and O).
      const bool full_tile = n0 + kMmaBlockN - 1 <= min(row_pos[0], row_pos[1]) && n0 >= max(row_lo[0], row_lo[1]);
      float tile_max[2] = {kNegInf, kNegInf};
#pragma unroll
      for (int n = 0; n < kNTiles; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int half = e >> 1;
          float score = s_acc[n][e] * scale_log2;
          if (!full_tile) {
            const int slot = n0 + n * 8 + quad_col + (e & 1);
            if (slot > row_pos[half] || slot < row_lo[half]) score = kNegInf;
          }
          s_acc[n][e] = score;
          tile_max[half] = fmaxf(tile_max[half], score);
        }
      }
      float rescale[2], offset[2];
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        tile_max[half] = fmaxf(tile_max[half], __shfl_xor_sync(0xffffffffu, tile_max[half], 1));
        tile_max[half] = fmaxf(tile_max[half], __shfl_xor_sync(0xffffffffu, tile_max[half], 2));
        const float new_max = fmaxf(row_max[half], tile_max[half]);
        // A row with nothing visible yet keeps max -inf; offset 0 keeps exp2 away from inf - inf.
        offset[half] = new_max == kNegInf ? 0.0f : new_max;
        rescale[half] = exp2f(row_max[half] - offset[half]);
        row_max[half] = new_max;
        row_sum[half] *= rescale[half];
      }
#pragma unroll
      for (int n = 0; n < kNTiles; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float p = exp2f(s_acc[n][e] - offset[e >> 1]);
          s_acc[n][e] = p;
          row_sum[e >> 1] += p;
        }
      }
#pragma unroll
      for (int d = 0; d < kDTiles; ++d) {
        o_acc[d][0] *= rescale[0];
        o_acc[d][1] *= rescale[0];
        o_acc[d][2] *= rescale[1];
        o_acc[d][3] *= rescale[1];
      }

      // O += P V. The S accumulators of n tiles 2k, 2k+1 are the A fragment of k16 step k;
      // V rows are slots (k) with d contiguous, so ldmatrix.trans yields the "col" B operand.
#pragma unroll
      for (int kk = 0; kk < kMmaBlockN / 16; ++kk) {
        uint32_t p_frag[4];
        p_frag[0] = pack2<T>(s_acc[2 * kk][0], s_acc[2 * kk][1]);
        p_frag[1] = pack2<T>(s_acc[2 * kk][2], s_acc[2 * kk][3]);
        p_frag[2] = pack2<T>(s_acc[2 * kk + 1][0], s_acc[2 * kk + 1][1]);
        p_frag[3] = pack2<T>(s_acc[2 * kk + 1][2], s_acc[2 * kk + 1][3]);
#pragma unroll
        for (int d = 0; d < kDTiles; d += 2) {
          uint32_t b[4];  // (d tile d: slots lo, hi), (d + 1: lo, hi)
          ldmatrix_x4_trans(
              b, smem_addr(tile_v + swizzle<kHeadDim>(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, d + (lane >> 4))));
          mma_16816<T>(o_acc[d], p_frag, b[0], b[1]);
          mma_16816<T>(o_acc[d + 1], p_frag, b[2], b[3]);
        }
      }
    }
    __syncthreads();  // the next iteration's copy overwrites this stage
  }

  // Normalize and store: the quad's four threads hold a row's 2-column slices of each d tile.
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float sum = row_sum[half];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    if (row_pos[half] < 0) continue;
    const float inv_sum = sum > 0.0f ? 1.0f / sum : 0.0f;
    if (kDecode && num_splits > 1) {
      const int64_t row = (static_cast<int64_t>(seq) * num_heads + row_head[half]) * num_splits + split;
      float* partial_row = partial_out + row * kHeadDim;
#pragma unroll
      for (int d = 0; d < kDTiles; ++d) {
        *reinterpret_cast<float2*>(partial_row + d * 8 + quad_col) =
            make_float2(o_acc[d][2 * half] * inv_sum, o_acc[d][2 * half + 1] * inv_sum);
      }
      if ((lane & 3) == 0) {
        partial_ml[2 * row] = row_max[half];
        partial_ml[2 * row + 1] = sum;
      }
      continue;
    }
    T* out_row = out + (static_cast<int64_t>(q_begin + row_token[half]) * num_heads + row_head[half]) * kHeadDim;
#pragma unroll
    for (int d = 0; d < kDTiles; ++d) {
      const uint32_t packed = pack2<T>(o_acc[d][2 * half] * inv_sum, o_acc[d][2 * half + 1] * inv_sum);
      *reinterpret_cast<uint32_t*>(out_row + d * 8 + quad_col) = packed;
    }
  }
}

}  // namespace strata::cuda::paged
