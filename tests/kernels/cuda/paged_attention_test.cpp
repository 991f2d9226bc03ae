// Tests kernels/cuda/paged_attention.cu (split-KV decode, SIMT and tensor-core, and the tiled
// prefill kernel) against its CPU twin kernels/cpu/paged_attention.cpp on random ragged
// batches over scattered blocks.
#include "kernels/cuda/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <sstream>

#include "kernels/cpu/paged_attention.h"
#include "tests/kernels/cuda/cuda_test_util.h"

namespace strata {
namespace {

using test::CudaKernelTest;
using test::DeviceBuffer;

struct SeqShape {
  int n_new;        // new tokens (query rows) this step
  int context_len;  // cached tokens, the new ones included
};

struct AttentionShape {
  int num_heads, num_kv_heads, head_dim, block_size, sliding_window;
  int q_extra;  // q_stride - num_heads * head_dim: q rows inside a fused [q | k | v] buffer
  std::vector<SeqShape> seqs;
};

// The decode workspace: as paged_attention_workspace_bytes sizes it, a third of that (fewer
// splits), 1 KiB (less than the split counters: unsplit), or none.
enum class Workspace { kAsSized, kThird, kTiny, kNone };

std::string describe(const AttentionShape& s) {
  std::ostringstream os;
  os << s.num_heads << "/" << s.num_kv_heads << " heads of " << s.head_dim << ", blocks of " << s.block_size
     << ", window " << s.sliding_window << ", q_extra " << s.q_extra << ", seqs (n_new, context):";
  for (const SeqShape& q : s.seqs) os << " (" << q.n_new << "," << q.context_len << ")";
  return os.str();
}

// Tolerances of the brief: bf16 P and output roundings, fp32 softmax.
test::Tolerance attention_tolerance(test::DType dtype) {
  return dtype == test::DType::kBF16 ? test::Tolerance{2e-2f, 2e-2f} : test::Tolerance{5e-3f, 5e-3f};
}

// Where the first and the worst mismatch are, as "token t head h dim d".
std::string locate(size_t index, const AttentionShape& s) {
  const size_t per_token = size_t(s.num_heads) * s.head_dim;
  return "token " + std::to_string(index / per_token) + " head " + std::to_string(index % per_token / s.head_dim) +
         " dim " + std::to_string(index % s.head_dim);
}

class PagedAttentionCuda : public CudaKernelTest {
 protected:
  void check(std::mt19937_64& rng, const AttentionShape& s, Workspace workspace_kind = Workspace::kAsSized) {
    SCOPED_TRACE(describe(s));
    const int num_seqs = static_cast<int>(s.seqs.size());
    const int head_dim = s.head_dim;
    std::vector<int32_t> query_start(num_seqs + 1, 0);
    std::vector<int32_t> context_lens(num_seqs);
    int max_query_len = 0, max_context_len = 0, max_blocks_per_seq = 1, total_blocks = 0;
    for (int i = 0; i < num_seqs; ++i) {
      ASSERT_GE(s.seqs[i].context_len, s.seqs[i].n_new);
      query_start[i + 1] = query_start[i] + s.seqs[i].n_new;
      context_lens[i] = s.seqs[i].context_len;
      max_query_len = std::max(max_query_len, s.seqs[i].n_new);
      max_context_len = std::max(max_context_len, s.seqs[i].context_len);
      const int blocks = (s.seqs[i].context_len + s.block_size - 1) / s.block_size;
      max_blocks_per_seq = std::max(max_blocks_per_seq, blocks + 1);  // one unused entry at least
      total_blocks += blocks;
    }
    const int num_tokens = query_start[num_seqs];

    // Non-contiguous block tables: a random permutation of the pool, with spare blocks no
    // sequence owns. Unused table entries point far outside the pool, so a kernel reading
    // past context_len faults instead of passing.
    const int num_blocks = total_blocks + 7;
    std::vector<int32_t> pool(num_blocks);
    std::iota(pool.begin(), pool.end(), 0);
    std::shuffle(pool.begin(), pool.end(), rng);
    std::vector<int32_t> block_tables(size_t(num_seqs) * max_blocks_per_seq, std::numeric_limits<int32_t>::max() / 2);
    std::vector<bool> owned_slot(size_t(num_blocks) * s.block_size, false);
    int next = 0;
    for (int i = 0; i < num_seqs; ++i) {
      for (int t = 0; t < context_lens[i]; t += s.block_size) {
        block_tables[size_t(i) * max_blocks_per_seq + t / s.block_size] = pool[next++];
      }
      for (int t = 0; t < context_lens[i]; ++t) {
        const int block = block_tables[size_t(i) * max_blocks_per_seq + t / s.block_size];
        owned_slot[size_t(block) * s.block_size + t % s.block_size] = true;
      }
    }

    // Caches: random where a sequence's context lies, NaN everywhere else (tails of last
    // blocks, spare blocks): the kernels must neither read those nor let them leak.
    const size_t slot_elems = size_t(s.num_kv_heads) * head_dim;
    auto k_cache = test::round_to(test::random_vector(rng, owned_slot.size() * slot_elems, -2, 2), dtype());
    auto v_cache = test::round_to(test::random_vector(rng, owned_slot.size() * slot_elems, -1, 1), dtype());
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (size_t slot = 0; slot < owned_slot.size(); ++slot) {
      if (owned_slot[slot]) continue;
      std::fill_n(k_cache.begin() + slot * slot_elems, slot_elems, nan);
      std::fill_n(v_cache.begin() + slot * slot_elems, slot_elems, nan);
    }
    const int64_t q_stride = int64_t(s.num_heads) * head_dim + s.q_extra;
    const auto q = test::round_to(test::random_vector(rng, size_t(num_tokens) * q_stride, -2, 2), dtype());
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));

    std::vector<float> expected(size_t(num_tokens) * s.num_heads * head_dim);
    cpu::paged_attention(expected.data(), q.data(), q_stride, k_cache.data(), v_cache.data(), block_tables.data(),
                         max_blocks_per_seq, query_start.data(), context_lens.data(), num_seqs, s.num_heads,
                         s.num_kv_heads, head_dim, s.block_size, scale, s.sliding_window);

    const size_t sized = cuda::paged_attention_workspace_bytes(num_tokens, s.num_heads, head_dim, max_context_len);
    const size_t workspace_bytes = workspace_kind == Workspace::kAsSized ? sized
                                   : workspace_kind == Workspace::kThird ? sized / 3 / 16 * 16
                                   : workspace_kind == Workspace::kTiny  ? 1024
                                                                         : 0;
    DeviceBuffer d_q = test::to_device(q, dtype());
    DeviceBuffer d_k = test::to_device(k_cache, dtype());
    DeviceBuffer d_v = test::to_device(v_cache, dtype());
    DeviceBuffer d_tables(block_tables.size() * sizeof(int32_t));
    DeviceBuffer d_query_start(query_start.size() * sizeof(int32_t));
    DeviceBuffer d_context_lens(context_lens.size() * sizeof(int32_t));
    DeviceBuffer d_out(expected.size() * cuda::dtype_size(dtype()));
    DeviceBuffer d_workspace(workspace_bytes);
    ASSERT_TRUE(d_q.ok() && d_k.ok() && d_v.ok() && d_tables.ok() && d_query_start.ok() && d_context_lens.ok() &&
                d_out.ok() && d_workspace.ok());
    STRATA_ASSERT_CUDA(d_tables.upload(block_tables));
    STRATA_ASSERT_CUDA(d_query_start.upload(query_start));
    STRATA_ASSERT_CUDA(d_context_lens.upload(context_lens));
    // Partials poisoned, counters cleared once: the split merge must read only what this
    // launch wrote, and leave the counters zero for the second launch.
    STRATA_ASSERT_CUDA(d_workspace.poison());
    STRATA_ASSERT_CUDA(cuda::paged_attention_clear_workspace(d_workspace.get(), workspace_bytes, stream_));
    auto launch = [&] {
      return cuda::paged_attention(
          d_out.get(), d_q.get(), q_stride, d_k.get(), d_v.get(), d_tables.as<int32_t>(), max_blocks_per_seq,
          d_query_start.as<int32_t>(), d_context_lens.as<int32_t>(), num_seqs, num_tokens, max_query_len,
          max_context_len, s.num_heads, s.num_kv_heads, head_dim, s.block_size, scale, s.sliding_window,
          workspace_kind == Workspace::kNone ? nullptr : d_workspace.get(), workspace_bytes, dtype(), stream_);
    };
    STRATA_ASSERT_CUDA(d_out.poison());
    STRATA_ASSERT_LAUNCH(launch());
    STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
    const std::vector<float> actual = fetch(d_out);
    STRATA_ASSERT_CUDA(d_out.poison());
    STRATA_ASSERT_LAUNCH(launch());
    STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
    const std::vector<float> again = fetch(d_out);
    size_t differ = 0;
    for (size_t i = 0; i < actual.size(); ++i) differ += std::memcmp(&actual[i], &again[i], sizeof(float)) != 0;
    EXPECT_EQ(differ, 0u) << "a second launch on the same workspace differs in " << differ << " outputs";

    const test::Tolerance tol = attention_tolerance(dtype());
    size_t bad = 0, first_bad = 0, worst = 0;
    float worst_diff = 0.0f;
    for (size_t i = 0; i < actual.size(); ++i) {
      const float diff = std::fabs(actual[i] - expected[i]);
      if (!(diff <= tol.atol + tol.rtol * std::fabs(expected[i]))) {
        if (bad++ == 0) first_bad = i;
        if (!(diff <= worst_diff)) {
          worst_diff = diff;
          worst = i;
        }
      }
    }
    EXPECT_EQ(bad, 0u) << bad << " of " << actual.size() << " outputs off; first at " << locate(first_bad, s) << " ("
                       << actual[first_bad] << " vs " << expected[first_bad] << "), worst at " << locate(worst, s)
                       << " (" << actual[worst] << " vs " << expected[worst] << ")";
  }
};

std::vector<SeqShape> decodes(std::mt19937_64& rng, int count, int max_context) {
  std::vector<SeqShape> seqs;
  for (int i = 0; i < count; ++i) seqs.push_back({1, test::random_int(rng, 1, max_context)});
  return seqs;
}

// Prefill chunks of 1..max_new tokens after a cached prefix of 0..max_prefix tokens.
std::vector<SeqShape> chunks(std::mt19937_64& rng, int count, int max_new, int max_prefix) {
  std::vector<SeqShape> seqs;
  for (int i = 0; i < count; ++i) {
    const int n_new = test::random_int(rng, 1, max_new);
    seqs.push_back({n_new, n_new + (max_prefix > 0 ? test::random_int(rng, 0, max_prefix) : 0)});
  }
  return seqs;
}

std::vector<SeqShape> concat(std::vector<SeqShape> a, const std::vector<SeqShape>& b) {
  a.insert(a.end(), b.begin(), b.end());
  std::shuffle(a.begin(), a.end(), std::mt19937_64(a.size()));
  return a;
}

TEST_P(PagedAttentionCuda, DecodeBatchMatchesCpuTwin) {
  STRATA_SEEDED_RNG(rng);
  // Contexts 1..3000 including the edges; GQA 4 and 8, MHA; q inside a fused qkv row.
  std::vector<SeqShape> edges = {{1, 1}, {1, 2}, {1, 3000}, {1, 255}, {1, 257}};
  check(rng, {16, 4, 128, 16, 0, 2 * 4 * 128, concat(edges, decodes(rng, 11, 3000))});
  if (HasFatalFailure()) return;
  check(rng, {16, 2, 64, 16, 0, 0, decodes(rng, 9, 3000)});
  if (HasFatalFailure()) return;
  check(rng, {4, 4, 64, 16, 0, 8, decodes(rng, 6, 3000)});
}

TEST_P(PagedAttentionCuda, LongDecodesSplitTheContext) {
  STRATA_SEEDED_RNG(rng);
  // A few long sequences: the launcher splits their context to fill the GPU. GQA 8 and 3 take
  // the tensor-core decode, GQA 1 and 2 the SIMT one.
  check(rng, {8, 1, 128, 16, 0, 0, {{1, 3000}, {1, 2987}}});
  if (HasFatalFailure()) return;
  check(rng, {8, 4, 128, 16, 0, 0, {{1, 3000}, {1, 1}}});
  if (HasFatalFailure()) return;
  check(rng, {8, 8, 64, 16, 0, 0, {{1, 2049}}});
  if (HasFatalFailure()) return;
  check(rng, {12, 4, 128, 16, 0, 0, {{1, 16384}, {1, 5}}});
}

TEST_P(PagedAttentionCuda, TensorCoreDecodeSharesSplitsAmongWarps) {
  STRATA_SEEDED_RNG(rng);
  // One or two kv heads: the tensor-core decode takes its most splits (64), each shared by 4
  // warps of 16-slot tiles; short sequences leave warps without tiles, odd lengths end a split
  // on a partial tile.
  check(rng, {4, 1, 128, 16, 0, 0, {{1, 20000}}});
  if (HasFatalFailure()) return;
  check(rng, {8, 1, 128, 16, 0, 0, {{1, 16383}, {1, 17}, {1, 63}, {1, 65}}});
  if (HasFatalFailure()) return;
  // A window over several splits that starts off a tile boundary; blocks of 1 and 64 slots.
  check(rng, {8, 2, 128, 16, 1003, 0, {{1, 5000}, {1, 999}, {1, 1004}}});
  if (HasFatalFailure()) return;
  check(rng, {8, 2, 64, 1, 0, 0, decodes(rng, 3, 2000)});
  if (HasFatalFailure()) return;
  check(rng, {8, 1, 64, 64, 300, 0, decodes(rng, 3, 3000)});
  if (HasFatalFailure()) return;
  check(rng, {8, 2, 128, 16, 0, 0, {{1, 3000}, {1, 40}}}, Workspace::kNone);
}

TEST_P(PagedAttentionCuda, DecodesRunUnsplitWithoutWorkspace) {
  STRATA_SEEDED_RNG(rng);
  check(rng, {8, 2, 128, 16, 0, 0, {{1, 3000}, {1, 700}}}, Workspace::kNone);
  if (HasFatalFailure()) return;
  check(rng, {8, 4, 128, 16, 0, 0, {{1, 3000}, {1, 700}}}, Workspace::kTiny);
}

TEST_P(PagedAttentionCuda, SmallerWorkspaceTakesFewerSplits) {
  STRATA_SEEDED_RNG(rng);
  check(rng, {8, 2, 128, 16, 0, 0, {{1, 3000}, {1, 700}}}, Workspace::kThird);
  if (HasFatalFailure()) return;
  check(rng, {32, 8, 128, 16, 0, 0, {{1, 5000}}}, Workspace::kThird);
}

TEST_P(PagedAttentionCuda, PrefillMatchesCpuTwin) {
  STRATA_SEEDED_RNG(rng);
  // Whole prompts, lengths 1..300 (not multiples of the 128-row or the 64- and 128-slot tiles).
  std::vector<SeqShape> edges = {{2, 2}, {63, 63}, {65, 65}, {300, 300}};
  check(rng, {8, 8, 64, 16, 0, 0, concat(edges, chunks(rng, 4, 300, 0))});
  if (HasFatalFailure()) return;
  check(rng, {8, 2, 128, 16, 0, 3 * 128, concat(edges, chunks(rng, 3, 300, 0))});
  if (HasFatalFailure()) return;
  check(rng, {16, 2, 128, 16, 0, 0, {{129, 129}, {7, 7}}});
}

TEST_P(PagedAttentionCuda, ChunkedPrefillAttendsToCachedPrefix) {
  STRATA_SEEDED_RNG(rng);
  check(rng, {8, 2, 128, 16, 0, 0, concat({{100, 1100}, {2, 3000}}, chunks(rng, 4, 300, 1000))});
  if (HasFatalFailure()) return;
  check(rng, {4, 1, 64, 16, 0, 0, chunks(rng, 5, 200, 700)});
}

TEST_P(PagedAttentionCuda, PrefillRowTilesCoverLongChunksAndPrefixes) {
  STRATA_SEEDED_RNG(rng);
  // Several 128-row tiles per sequence (32 tokens at GQA 4, 128 at MHA, 16 at GQA 8), lengths
  // off the row tile and the 64-slot K/V tile, behind cached prefixes of many K/V tiles.
  check(rng, {8, 2, 128, 16, 0, 0, {{300, 1300}, {517, 517}, {1024, 1024}, {129, 2000}, {33, 97}}});
  if (HasFatalFailure()) return;
  check(rng, {4, 4, 128, 16, 0, 0, {{127, 127}, {128, 128}, {129, 1129}, {257, 300}}});
  if (HasFatalFailure()) return;
  check(rng, {16, 2, 64, 16, 0, 0, {{200, 1200}, {31, 31}, {1, 500}}});
  if (HasFatalFailure()) return;
  // Windows that start inside a K/V sub-tile, and rows whose window leaves whole tiles behind.
  check(rng, {8, 2, 128, 16, 45, 0, {{400, 900}, {70, 70}}});
  if (HasFatalFailure()) return;
  check(rng, {8, 8, 128, 32, 200, 0, {{333, 1000}}});
}

TEST_P(PagedAttentionCuda, MixedBatchOfDecodesAndChunks) {
  STRATA_SEEDED_RNG(rng);
  check(rng, {16, 2, 128, 16, 0, 2 * 2 * 128, concat(decodes(rng, 8, 3000), chunks(rng, 4, 300, 1500))});
  if (HasFatalFailure()) return;
  check(rng, {8, 8, 64, 16, 0, 0, concat(decodes(rng, 5, 2000), chunks(rng, 3, 150, 400))});
  if (HasFatalFailure()) return;
  check(rng, {12, 4, 64, 16, 0, 0, concat(decodes(rng, 30, 500), chunks(rng, 2, 90, 0))});
}

TEST_P(PagedAttentionCuda, SlidingWindowLimitsTheVisibleSlots) {
  STRATA_SEEDED_RNG(rng);
  // Windows shorter than a tile, than a prompt, and than the longest context.
  check(rng, {8, 2, 128, 16, 37, 0, concat(decodes(rng, 4, 1000), chunks(rng, 3, 300, 300))});
  if (HasFatalFailure()) return;
  check(rng, {8, 1, 64, 16, 500, 0, concat({{1, 3000}, {1, 400}, {260, 1200}}, chunks(rng, 2, 300, 800))});
  if (HasFatalFailure()) return;
  check(rng, {4, 4, 128, 16, 1, 0, concat(decodes(rng, 2, 100), chunks(rng, 2, 70, 30))});
}

TEST_P(PagedAttentionCuda, OtherBlockSizes) {
  STRATA_SEEDED_RNG(rng);
  check(rng, {8, 2, 128, 8, 0, 0, concat(decodes(rng, 4, 2000), chunks(rng, 2, 200, 300))});
  if (HasFatalFailure()) return;
  check(rng, {8, 4, 64, 32, 0, 0, concat(decodes(rng, 4, 2000), chunks(rng, 2, 200, 300))});
  if (HasFatalFailure()) return;
  check(rng, {8, 4, 64, 128, 0, 0, concat(decodes(rng, 4, 2000), chunks(rng, 2, 200, 300))});
}

TEST_P(PagedAttentionCuda, OddGqaRatios) {
  STRATA_SEEDED_RNG(rng);
  // Group sizes that fill neither the 16 rows of a tensor-core tile nor a power of two.
  check(rng, {6, 2, 128, 16, 0, 0, concat(decodes(rng, 4, 3000), chunks(rng, 2, 100, 200))});
  if (HasFatalFailure()) return;
  check(rng, {12, 2, 64, 16, 0, 0, concat(decodes(rng, 4, 3000), chunks(rng, 2, 100, 200))});
}

TEST_P(PagedAttentionCuda, SmallHeadDimsOfTestCheckpoints) {
  STRATA_SEEDED_RNG(rng);
  // head_dim 16 and 32 (the golden checkpoints): every decode takes the tensor-core kernel.
  check(rng, {4, 2, 16, 16, 0, 0, concat(decodes(rng, 5, 1500), chunks(rng, 3, 100, 200))});
  if (HasFatalFailure()) return;
  check(rng, {8, 2, 32, 16, 0, 2 * 2 * 32, concat(decodes(rng, 5, 1500), chunks(rng, 3, 100, 200))});
  if (HasFatalFailure()) return;
  check(rng, {4, 1, 32, 16, 0, 0, {{1, 3000}, {1, 20}}});
}

INSTANTIATE_TEST_SUITE_P(DTypes, PagedAttentionCuda, ::testing::Values(test::DType::kBF16, test::DType::kF16),
                         test::DTypeName());

// Argument checks need no device: they fail before any CUDA call.
TEST(PagedAttentionCudaArgs, RejectsUnsupportedShapesWithAMessage) {
  auto launch = [](int num_heads, int num_kv_heads, int head_dim, int block_size, int64_t q_stride, test::DType dtype) {
    return cuda::paged_attention(nullptr, nullptr, q_stride, nullptr, nullptr, nullptr, 4, nullptr, nullptr, 1, 1, 1,
                                 16, num_heads, num_kv_heads, head_dim, block_size, 0.1f, 0, nullptr, 0, dtype,
                                 nullptr);
  };
  const cuda::LaunchStatus head_dim = launch(8, 8, 96, 16, 8 * 96, test::DType::kBF16);
  EXPECT_EQ(head_dim.error, cudaErrorInvalidValue);
  EXPECT_NE(head_dim.message.find("head_dim"), std::string::npos) << head_dim.message;
  EXPECT_EQ(launch(8, 8, 128, 16, 8 * 128, test::DType::kF32).error, cudaErrorInvalidValue);
  EXPECT_EQ(launch(32, 2, 128, 16, 32 * 128, test::DType::kF16).error, cudaErrorInvalidValue);  // group 16
  EXPECT_EQ(launch(8, 3, 128, 16, 8 * 128, test::DType::kF16).error, cudaErrorInvalidValue);
  EXPECT_EQ(launch(8, 8, 128, 12, 8 * 128, test::DType::kF16).error, cudaErrorInvalidValue);
  EXPECT_EQ(launch(8, 8, 128, 16, 8 * 128 + 4, test::DType::kF16).error, cudaErrorInvalidValue);
}

TEST(PagedAttentionCudaArgs, WorkspaceIsBoundedAndZeroForShortContexts) {
  // A context of one tile per warp (64 slots) never splits; 200 slots may (batch-1 decodes).
  EXPECT_EQ(cuda::paged_attention_workspace_bytes(64, 32, 128, 64), 0u);
  EXPECT_GT(cuda::paged_attention_workspace_bytes(1, 32, 128, 200), 0u);
  const size_t long_context = cuda::paged_attention_workspace_bytes(1, 32, 128, 100000);
  EXPECT_GT(long_context, 0u);
  EXPECT_LE(cuda::paged_attention_workspace_bytes(8192, 64, 128, 131072), size_t{16} << 20);
}

}  // namespace
}  // namespace strata
