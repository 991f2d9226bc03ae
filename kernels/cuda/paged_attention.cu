// Paged attention launcher: checks the arguments, sizes the decode splits, and launches on one
// stream (1) the split-KV decode over the sequences with one new token, as a programmatic
// dependent launch that merges its own splits: the SIMT kernel for GQA 1-2, the 4-warp
// tensor-core decode kernel with the group's heads as rows for GQA 3-8; (2) the tiled
// tensor-core prefill over the others. Each kernel skips the sequences of the other kind by
// reading query_start, so a mixed batch needs no host-side partition.
#include <algorithm>
#include <type_traits>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/paged_attention.h"
#include "kernels/cuda/paged_attention_decode.cuh"
#include "kernels/cuda/paged_attention_mma.cuh"
#include "kernels/cuda/paged_attention_prefill.cuh"

namespace strata::cuda {
namespace {

using paged::gqa_decode_smem_bytes;
using paged::kDecodeSplitUnit;
using paged::kDecodeThreads;
using paged::kGqaWarps;
using paged::kPrefillBlockM;
using paged::kPrefillWarps;
using paged::paged_decode_gqa_kernel;
using paged::paged_decode_kernel;
using paged::paged_prefill_kernel;
using paged::prefill_smem_bytes;

// Decode splits of the SIMT kernel: enough (sequence, query head, split) rows to fill the GPU
// several times over (4096 rows = 512..4096 CTAs for GQA 8..1, against 132 SMs), no split
// shorter than kMinSplitLen slots (a split must amortize its share of the merge), and at
// most kMaxSplits. The rows are then under 2 * kTargetRows, which bounds the workspace.
constexpr int kTargetRows = 4096;
constexpr int kMinSplitLen = 256;
constexpr int kMaxSplits = paged::kMaxDecodeSplits;
// Splits of the tensor-core decode: its CTAs stream 2 x 16 KiB per warp, 4 warps, two CTAs
// per SM, so one wave of 2 x 132 CTAs keeps an H100/H200 at full memory bandwidth; more CTAs
// only add waves and partials to merge. Same kMaxSplits and row bound; splits may be as short
// as one tile per warp (kDecodeSplitUnit), so that a short context of one sequence (batch-1
// decode at 1K) still spreads over many SMs instead of queueing its tiles on a few warps.
constexpr int kTargetCtas = 2 * 132;
constexpr int kGqaMinSplitLen = kDecodeSplitUnit;

// The workspace starts with one split counter per (sequence, kv head) a split decode may have:
// splits > 1 keep num_seqs * num_heads under kTargetRows (both wanted_*splits), and the
// launcher runs unsplit past that. The counters stay at this offset whatever the split count,
// so the zeros one launch leaves are where the next one looks.
constexpr int kMaxSplitCounters = kTargetRows;
constexpr size_t kCounterBytes = kMaxSplitCounters * sizeof(unsigned);
static_assert(kCounterBytes % 16 == 0, "the partials after the counters stay 16-byte aligned");

constexpr float kLog2e = 1.4426950408889634f;

int ceil_div(int a, int b) { return (a + b - 1) / b; }

// Splits wanted for decodes with up to `max_visible` visible slots.
int wanted_splits(int num_seqs, int num_heads, int max_visible) {
  const int by_length = std::min(kMaxSplits, ceil_div(std::max(max_visible, 1), kMinSplitLen));
  const int64_t rows = static_cast<int64_t>(std::max(num_seqs, 1)) * num_heads;
  const int by_occupancy = rows >= kTargetRows ? 1 : static_cast<int>((kTargetRows + rows - 1) / rows);
  return std::max(1, std::min(by_length, by_occupancy));
}

// Splits wanted by the tensor-core decode: the (sequence, kv head) pairs times the splits
// reach kTargetCtas where the context allows, the rows stay under 2 * kTargetRows.
int wanted_gqa_splits(int num_seqs, int num_heads, int num_kv_heads, int max_visible) {
  const int by_length = std::min(kMaxSplits, ceil_div(std::max(max_visible, 1), kGqaMinSplitLen));
  const int64_t pairs = static_cast<int64_t>(std::max(num_seqs, 1)) * num_kv_heads;
  const int by_occupancy = pairs >= kTargetCtas ? 1 : static_cast<int>((kTargetCtas + pairs - 1) / pairs);
  const int64_t rows_per_split = static_cast<int64_t>(std::max(num_seqs, 1)) * num_heads;
  const int by_rows = static_cast<int>(std::max<int64_t>(1, 2 * kTargetRows / rows_per_split));
  return std::max(1, std::min({by_length, by_occupancy, by_rows}));
}

size_t split_workspace_bytes(int64_t rows, int head_dim) {
  return static_cast<size_t>(rows) * static_cast<size_t>(head_dim + 2) * sizeof(float);
}

bool is_power_of_two(int x) { return x > 0 && (x & (x - 1)) == 0; }

int log2_int(int x) {
  int shift = 0;
  while ((1 << shift) < x) ++shift;
  return shift;
}

struct Args {
  void* out;
  const void* q;
  int64_t q_stride;
  const void* k_cache;
  const void* v_cache;
  const int32_t* block_tables;
  int max_blocks_per_seq;
  const int32_t* query_start;
  const int32_t* context_lens;
  int num_seqs;
  int num_tokens;
  int max_query_len;
  int max_context_len;
  int num_heads;
  int num_kv_heads;
  int head_dim;
  int block_shift;
  float scale_log2;
  int sliding_window;
  void* workspace;
  size_t workspace_bytes;
};

// Lets `kernel` take `bytes` of dynamic shared memory (above the 48 KiB default) with the
// largest carveout, so two CTAs fit an SM; set on every launch because the attributes are per
// device.
template <class Kernel>
cudaError_t allow_shared_memory(Kernel* kernel, size_t bytes) {
  const cudaError_t attr = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (attr != cudaSuccess) return attr;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared);
}

// The 128-row tensor-core prefill over the sequences with two or more new tokens.
template <class T, int kHeadDim>
LaunchStatus launch_prefill(const Args& a, DType dtype, ShapeArgs shape, cudaStream_t stream) {
  constexpr const char* kKernel = "paged_prefill_kernel";
  // The kernel takes row maxima of the unscaled scores, which needs a positive scale.
  if (!(a.scale_log2 > 0.0f)) return invalid_argument(kKernel, dtype, shape, "scale must be positive");
  const int group = a.num_heads / a.num_kv_heads;
  const int64_t row_tiles = (static_cast<int64_t>(a.max_query_len) * group + kPrefillBlockM - 1) / kPrefillBlockM;
  if (row_tiles > 65535) return invalid_argument(kKernel, dtype, shape, "more than 65535 row tiles");
  constexpr size_t kSmem = prefill_smem_bytes<kHeadDim>();
  auto* kernel = paged_prefill_kernel<T, kHeadDim>;
  if (allow_shared_memory(kernel, kSmem) != cudaSuccess) return check_launch(kKernel, dtype, shape);
  const dim3 grid(static_cast<unsigned>(a.num_seqs), static_cast<unsigned>(a.num_kv_heads),
                  static_cast<unsigned>(row_tiles));
  kernel<<<grid, kPrefillWarps * 32, kSmem, stream>>>(
      static_cast<T*>(a.out), static_cast<const T*>(a.q), a.q_stride, static_cast<const T*>(a.k_cache),
      static_cast<const T*>(a.v_cache), a.block_tables, a.max_blocks_per_seq, a.query_start, a.context_lens,
      a.num_heads, a.num_kv_heads, group, a.block_shift, a.scale_log2, a.sliding_window);
  return check_launch(kKernel, dtype, shape);
}

// A decode launch's split layout: split_len slots per split, and (num_splits > 1) where the
// partials and the split counters lie in the workspace.
struct Splits {
  int split_len = 0;
  int num_splits = 1;
  float* partial_out = nullptr;
  float* partial_ml = nullptr;
  unsigned* counters = nullptr;
};

template <class T, int kHeadDim, int kGroup>
LaunchStatus launch_decode_group(const Args& a, const Splits& sp, DType dtype, ShapeArgs shape, cudaStream_t stream) {
  const int group = a.num_heads / a.num_kv_heads;
  const dim3 grid(static_cast<unsigned>(a.num_seqs), static_cast<unsigned>(a.num_kv_heads),
                  static_cast<unsigned>(sp.num_splits));
  (void)launch_pdl(paged_decode_kernel<T, kHeadDim, kGroup>, grid, dim3(kDecodeThreads), 0, stream,
                   static_cast<T*>(a.out), static_cast<const T*>(a.q), a.q_stride, static_cast<const T*>(a.k_cache),
                   static_cast<const T*>(a.v_cache), a.block_tables, a.max_blocks_per_seq, a.query_start,
                   a.context_lens, a.num_heads, a.num_kv_heads, group, a.block_shift, a.scale_log2, a.sliding_window,
                   sp.split_len, sp.num_splits, sp.partial_out, sp.partial_ml, sp.counters);
  return check_launch("paged_decode_kernel", dtype, shape);
}

// The tensor-core decode: 4 warps per (sequence, kv head, split), the group's heads as rows.
template <class T, int kHeadDim>
LaunchStatus launch_decode_gqa(const Args& a, const Splits& sp, DType dtype, ShapeArgs shape, cudaStream_t stream) {
  constexpr const char* kKernel = "paged_decode_gqa_kernel";
  constexpr size_t kSmem = gqa_decode_smem_bytes<kHeadDim>();
  auto* kernel = paged_decode_gqa_kernel<T, kHeadDim>;
  if (allow_shared_memory(kernel, kSmem) != cudaSuccess) return check_launch(kKernel, dtype, shape);
  const int group = a.num_heads / a.num_kv_heads;
  const dim3 grid(static_cast<unsigned>(a.num_seqs), static_cast<unsigned>(a.num_kv_heads),
                  static_cast<unsigned>(sp.num_splits));
  (void)launch_pdl(kernel, grid, dim3(kGqaWarps * 32), kSmem, stream, static_cast<T*>(a.out),
                   static_cast<const T*>(a.q), a.q_stride, static_cast<const T*>(a.k_cache),
                   static_cast<const T*>(a.v_cache), a.block_tables, a.max_blocks_per_seq, a.query_start,
                   a.context_lens, a.num_heads, a.num_kv_heads, group, a.block_shift, a.scale_log2, a.sliding_window,
                   sp.split_len, sp.num_splits, sp.partial_out, sp.partial_ml, sp.counters);
  return check_launch(kKernel, dtype, shape);
}

template <class T, int kHeadDim>
LaunchStatus launch_decode(const Args& a, DType dtype, ShapeArgs shape, cudaStream_t stream) {
  const int max_visible = a.sliding_window > 0 ? std::min(a.max_context_len, a.sliding_window) : a.max_context_len;
  // GQA 1 and 2 at head_dim 64/128: the SIMT kernel (its 2 * group * head_dim FMAs per slot
  // stay under the memory time). From 3 query heads per kv head on the FMAs would bound it, so
  // the heads become the rows of a 16-row tensor-core tile instead; the small head dims of the
  // test checkpoints (16, 32) always take the tensor-core kernel, to keep the instances few.
  const int group = a.num_heads / a.num_kv_heads;
  const bool simt = kHeadDim >= 64 && group <= 2;
  int num_splits = simt ? wanted_splits(a.num_seqs, a.num_heads, max_visible)
                        : wanted_gqa_splits(a.num_seqs, a.num_heads, a.num_kv_heads, max_visible);
  // Fewer splits when the caller's workspace is smaller than paged_attention_workspace_bytes,
  // none when it cannot hold the counters or the batch needs more counters than it has.
  const int64_t rows_per_split = static_cast<int64_t>(a.num_seqs) * a.num_heads;
  const size_t available =
      a.workspace != nullptr && a.workspace_bytes > kCounterBytes ? a.workspace_bytes - kCounterBytes : 0;
  const int64_t fit = static_cast<int64_t>(available / split_workspace_bytes(rows_per_split, kHeadDim));
  if (fit < num_splits) num_splits = static_cast<int>(std::max<int64_t>(fit, 1));
  if (static_cast<int64_t>(a.num_seqs) * a.num_kv_heads > kMaxSplitCounters) num_splits = 1;
  // Split lengths are whole tiles of every warp of the tensor-core kernel (any length suits
  // the SIMT one); recount so no split is empty for the longest sequence.
  constexpr int kStep = kDecodeSplitUnit;
  Splits sp;
  sp.split_len = ceil_div(ceil_div(std::max(max_visible, 1), num_splits), kStep) * kStep;
  sp.num_splits = ceil_div(std::max(max_visible, 1), sp.split_len);
  if (sp.num_splits > 1) {
    sp.counters = static_cast<unsigned*>(a.workspace);
    sp.partial_out = reinterpret_cast<float*>(static_cast<char*>(a.workspace) + kCounterBytes);
    sp.partial_ml = sp.partial_out + rows_per_split * sp.num_splits * kHeadDim;
  }
  if (!simt) return launch_decode_gqa<T, kHeadDim>(a, sp, dtype, shape, stream);
  if constexpr (kHeadDim >= 64) {
    return group == 1 ? launch_decode_group<T, kHeadDim, 1>(a, sp, dtype, shape, stream)
                      : launch_decode_group<T, kHeadDim, 2>(a, sp, dtype, shape, stream);
  }
  return {};
}

template <class T, int kHeadDim>
LaunchStatus launch_all(const Args& a, DType dtype, ShapeArgs shape, cudaStream_t stream) {
  // Prefill runs only when some sequence has two or more new tokens; decode is skipped only
  // when none can have exactly one (every sequence then has max_query_len tokens).
  const bool any_prefill = a.max_query_len > 1;
  const bool any_decode =
      !(any_prefill && static_cast<int64_t>(a.num_tokens) == static_cast<int64_t>(a.max_query_len) * a.num_seqs);
  if (any_decode) {
    const LaunchStatus status = launch_decode<T, kHeadDim>(a, dtype, shape, stream);
    if (!status.ok()) return status;
  }
  if (any_prefill) return launch_prefill<T, kHeadDim>(a, dtype, shape, stream);
  return {};
}

}  // namespace

size_t paged_attention_workspace_bytes(int num_tokens, int num_heads, int head_dim, int max_context_len) {
  if (num_tokens <= 0 || num_heads <= 0 || head_dim <= 0) return 0;
  // Sized for the split count that num_seqs = 1..num_tokens decodes could want: wanted_splits
  // and wanted_gqa_splits both keep num_seqs * num_heads * splits under 2 * kTargetRows, and
  // splits under by_length (of the shorter minimum split).
  static_assert(kGqaMinSplitLen <= kMinSplitLen);
  const int64_t by_length = std::min(kMaxSplits, ceil_div(std::max(max_context_len, 1), kGqaMinSplitLen));
  if (by_length <= 1) return 0;
  const int64_t rows = std::min<int64_t>(2 * kTargetRows, static_cast<int64_t>(num_tokens) * num_heads * by_length);
  return kCounterBytes + split_workspace_bytes(rows, head_dim);
}

cudaError_t paged_attention_clear_workspace(void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  if (workspace == nullptr || workspace_bytes == 0) return cudaSuccess;
  return cudaMemsetAsync(workspace, 0, std::min(workspace_bytes, kCounterBytes), stream);
}

LaunchStatus paged_attention(void* out, const void* q, int64_t q_stride, const void* k_cache, const void* v_cache,
                             const int32_t* block_tables, int max_blocks_per_seq, const int32_t* query_start,
                             const int32_t* context_lens, int num_seqs, int num_tokens, int max_query_len,
                             int max_context_len, int num_heads, int num_kv_heads, int head_dim, int block_size,
                             float scale, int sliding_window, void* workspace, size_t workspace_bytes, DType dtype,
                             cudaStream_t stream) {
  constexpr const char* kKernel = "paged_attention";
  const ShapeArgs shape = {{"num_seqs", num_seqs},           {"num_tokens", num_tokens},
                           {"max_query_len", max_query_len}, {"max_context_len", max_context_len},
                           {"num_heads", num_heads},         {"num_kv_heads", num_kv_heads},
                           {"head_dim", head_dim},           {"block_size", block_size},
                           {"q_stride", q_stride},           {"sliding_window", sliding_window}};
  if (num_seqs < 0 || num_tokens < 0) return invalid_argument(kKernel, dtype, shape, "negative num_seqs or num_tokens");
  if (num_seqs == 0 || num_tokens == 0 || max_query_len <= 0) return {};
  if (dtype == DType::kF32) return invalid_argument(kKernel, dtype, shape, "f32 is not supported (bf16 or f16)");
  if (head_dim != 16 && head_dim != 32 && head_dim != 64 && head_dim != 128) {
    return invalid_argument(kKernel, dtype, shape, "head_dim must be 16, 32, 64 or 128");
  }
  if (num_kv_heads <= 0 || num_heads <= 0 || num_heads % num_kv_heads != 0 || num_heads / num_kv_heads > 8) {
    return invalid_argument(kKernel, dtype, shape, "num_heads / num_kv_heads must be a whole number in 1..8");
  }
  if (!is_power_of_two(block_size)) return invalid_argument(kKernel, dtype, shape, "block_size must be a power of two");
  if (max_blocks_per_seq <= 0 || max_context_len <= 0 || max_query_len > max_context_len) {
    return invalid_argument(kKernel, dtype, shape,
                            "need 0 < max_query_len <= max_context_len and max_blocks_per_seq > 0");
  }
  if (q_stride < static_cast<int64_t>(num_heads) * head_dim || q_stride % 8 != 0) {
    return invalid_argument(kKernel, dtype, shape, "q_stride must be >= num_heads * head_dim and a multiple of 8");
  }
  if (!is_aligned_16(out) || !is_aligned_16(q) || !is_aligned_16(k_cache) || !is_aligned_16(v_cache) ||
      !is_aligned_16(workspace)) {
    return invalid_argument(kKernel, dtype, shape, "out, q, k_cache, v_cache and workspace must be 16-byte aligned");
  }
  if (num_kv_heads > 65535) return invalid_argument(kKernel, dtype, shape, "num_kv_heads exceeds 65535");

  const Args args{out,
                  q,
                  q_stride,
                  k_cache,
                  v_cache,
                  block_tables,
                  max_blocks_per_seq,
                  query_start,
                  context_lens,
                  num_seqs,
                  num_tokens,
                  max_query_len,
                  max_context_len,
                  num_heads,
                  num_kv_heads,
                  head_dim,
                  log2_int(block_size),
                  scale * kLog2e,
                  sliding_window,
                  workspace,
                  workspace_bytes};
  auto with_dtype = [&](auto tag) -> LaunchStatus {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, float>) {
      return invalid_argument(kKernel, dtype, shape, "f32 is not supported (bf16 or f16)");
    } else {
      switch (head_dim) {
        case 16:
          return launch_all<T, 16>(args, dtype, shape, stream);
        case 32:
          return launch_all<T, 32>(args, dtype, shape, stream);
        case 64:
          return launch_all<T, 64>(args, dtype, shape, stream);
        default:
          return launch_all<T, 128>(args, dtype, shape, stream);
      }
    }
  };
  return dispatch_dtype(dtype, with_dtype);
}

}  // namespace strata::cuda
