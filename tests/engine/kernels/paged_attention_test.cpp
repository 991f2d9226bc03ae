// Tests kernels/cpu/paged_attention.cpp against dense causal attention per sequence, with K/V
// scattered over shuffled, non-contiguous blocks (unowned cache memory holds NaN, so reading a
// slot outside a sequence's visible range shows up in the output).
#include "kernels/cpu/paged_attention.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "tests/engine/kernels/kernel_test_util.h"

namespace strata {
namespace {

struct SeqSpec {
  int num_new;      // query tokens this step
  int context_len;  // cached prefix + new tokens
};

struct AttentionCase {
  int num_heads, num_kv_heads, head_dim, block_size, sliding_window;
  std::vector<SeqSpec> seqs;
};

// q: [n_new, heads, d]; k, v: [ctx, kv_heads, d] -> [n_new, heads, d]
std::vector<float> dense_causal_attention(const std::vector<float>& q, const std::vector<float>& k,
                                          const std::vector<float>& v, const AttentionCase& c, const SeqSpec& seq) {
  const int d = c.head_dim, group = c.num_heads / c.num_kv_heads;
  std::vector<float> out(size_t(seq.num_new) * c.num_heads * d);
  for (int j = 0; j < seq.num_new; ++j) {
    const int pos = seq.context_len - seq.num_new + j;
    for (int h = 0; h < c.num_heads; ++h) {
      const int kvh = h / group;
      std::vector<double> weights(pos + 1, 0.0);
      double max_score = -1e300;
      for (int t = 0; t <= pos; ++t) {
        if (c.sliding_window > 0 && t <= pos - c.sliding_window) continue;
        double s = 0;
        for (int i = 0; i < d; ++i)
          s += double(q[(j * c.num_heads + h) * d + i]) * k[(t * c.num_kv_heads + kvh) * d + i];
        weights[t] = s / std::sqrt(double(d));
        max_score = std::max(max_score, weights[t]);
      }
      double sum = 0;
      for (int t = 0; t <= pos; ++t) {
        if (c.sliding_window > 0 && t <= pos - c.sliding_window) {
          weights[t] = 0;
          continue;
        }
        weights[t] = std::exp(weights[t] - max_score);
        sum += weights[t];
      }
      for (int i = 0; i < d; ++i) {
        double acc = 0;
        for (int t = 0; t <= pos; ++t) acc += weights[t] * v[(t * c.num_kv_heads + kvh) * d + i];
        out[(j * c.num_heads + h) * d + i] = float(acc / sum);
      }
    }
  }
  return out;
}

void run_case(const AttentionCase& c, std::mt19937_64& rng) {
  const int num_seqs = int(c.seqs.size());
  const int d = c.head_dim;
  const int64_t slot_elems = int64_t(c.num_kv_heads) * d;
  std::vector<int32_t> query_start = {0}, context_lens;
  int max_blocks_per_seq = 0, total_blocks = 0;
  for (const auto& s : c.seqs) {
    query_start.push_back(query_start.back() + s.num_new);
    context_lens.push_back(s.context_len);
    const int blocks = (s.context_len + c.block_size - 1) / c.block_size;
    max_blocks_per_seq = std::max(max_blocks_per_seq, blocks + 1);  // + room left unused
    total_blocks += blocks;
  }
  const int num_tokens = query_start.back();
  const int num_blocks = total_blocks + 5;  // spare blocks nobody owns
  std::vector<int32_t> free_blocks(num_blocks);
  std::iota(free_blocks.begin(), free_blocks.end(), 0);
  std::shuffle(free_blocks.begin(), free_blocks.end(), rng);
  const int32_t unowned_block = free_blocks.back();  // pads the tables; never filled

  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> k_cache(size_t(num_blocks) * c.block_size * slot_elems, nan);
  std::vector<float> v_cache(k_cache.size(), nan);
  std::vector<int32_t> block_tables(size_t(num_seqs) * max_blocks_per_seq, unowned_block);
  // q rows carry extra columns, as q inside a fused qkv row.
  const int64_t q_stride = int64_t(c.num_heads) * d + 2 * slot_elems;
  const auto q_all = test::random_vector(rng, size_t(num_tokens) * q_stride, -2, 2);
  std::vector<float> expected(size_t(num_tokens) * c.num_heads * d);
  int next_free = 0;
  for (int s = 0; s < num_seqs; ++s) {
    const auto& seq = c.seqs[s];
    const auto k = test::random_vector(rng, size_t(seq.context_len) * slot_elems, -2, 2);
    const auto v = test::random_vector(rng, size_t(seq.context_len) * slot_elems, -2, 2);
    for (int t = 0; t < seq.context_len; ++t) {
      if (t % c.block_size == 0) block_tables[s * max_blocks_per_seq + t / c.block_size] = free_blocks[next_free++];
      const int64_t slot =
          int64_t(block_tables[s * max_blocks_per_seq + t / c.block_size]) * c.block_size + t % c.block_size;
      std::copy_n(k.begin() + t * slot_elems, slot_elems, k_cache.begin() + slot * slot_elems);
      std::copy_n(v.begin() + t * slot_elems, slot_elems, v_cache.begin() + slot * slot_elems);
    }
    std::vector<float> q(size_t(seq.num_new) * c.num_heads * d);
    for (int j = 0; j < seq.num_new; ++j)
      std::copy_n(q_all.begin() + (query_start[s] + j) * q_stride, c.num_heads * d, q.begin() + j * c.num_heads * d);
    const auto dense = dense_causal_attention(q, k, v, c, seq);
    std::copy(dense.begin(), dense.end(), expected.begin() + int64_t(query_start[s]) * c.num_heads * d);
  }

  std::vector<float> out(expected.size(), nan);
  cpu::paged_attention(out.data(), q_all.data(), q_stride, k_cache.data(), v_cache.data(), block_tables.data(),
                       max_blocks_per_seq, query_start.data(), context_lens.data(), num_seqs, c.num_heads,
                       c.num_kv_heads, d, c.block_size, 1.0f / std::sqrt(float(d)), c.sliding_window);
  EXPECT_TRUE(test::all_close(out, expected, 2e-5f, 1e-4f));
}

std::string describe(const AttentionCase& c) {
  std::string s = "heads " + std::to_string(c.num_heads) + "/" + std::to_string(c.num_kv_heads) + " head_dim " +
                  std::to_string(c.head_dim) + " block " + std::to_string(c.block_size) + " window " +
                  std::to_string(c.sliding_window) + " seqs";
  for (const auto& q : c.seqs) s += " (" + std::to_string(q.num_new) + "/" + std::to_string(q.context_len) + ")";
  return s;
}

// One decode and two prefill chunks on cached prefixes, plus a fresh prefill.
const std::vector<SeqSpec> kMixedBatch = {{1, 37}, {5, 20}, {16, 16}, {7, 50}};

TEST(PagedAttention, MixedBatchMatchesDenseCausalAttentionForGqaRatios124) {
  STRATA_SEEDED_RNG(rng);
  for (int ratio : {1, 2, 4}) {
    for (int block_size : {1, 4, 16}) {
      const AttentionCase c{2 * ratio, 2, 64, block_size, 0, kMixedBatch};
      SCOPED_TRACE(describe(c));
      run_case(c, rng);
    }
  }
}

TEST(PagedAttention, DecodeOnlyBatchWithLongContexts) {
  STRATA_SEEDED_RNG(rng);
  const AttentionCase c{8, 2, 128, 16, 0, {{1, 1}, {1, 200}, {1, 64}, {1, 17}}};
  SCOPED_TRACE(describe(c));
  run_case(c, rng);
}

TEST(PagedAttention, SlidingWindowHidesSlotsAtOrBeforePosMinusWindow) {
  STRATA_SEEDED_RNG(rng);
  for (int window : {1, 4, 9}) {
    const AttentionCase c{4, 2, 32, 4, window, kMixedBatch};
    SCOPED_TRACE(describe(c));
    run_case(c, rng);
  }
}

TEST(PagedAttention, RandomShapes) {
  STRATA_SEEDED_RNG(rng);
  for (int iter = 0; iter < 10; ++iter) {
    AttentionCase c;
    c.num_kv_heads = test::random_int(rng, 1, 3);
    c.num_heads = c.num_kv_heads * (1 << test::random_int(rng, 0, 2));
    c.head_dim = 8 * test::random_int(rng, 1, 12);
    c.block_size = 1 << test::random_int(rng, 0, 4);
    c.sliding_window = test::random_int(rng, 0, 1) ? test::random_int(rng, 1, 20) : 0;
    const int num_seqs = test::random_int(rng, 1, 5);
    for (int s = 0; s < num_seqs; ++s) {
      const int num_new = test::random_int(rng, 1, 12);
      c.seqs.push_back({num_new, num_new + test::random_int(rng, 0, 40)});
    }
    SCOPED_TRACE(describe(c));
    run_case(c, rng);
  }
}

}  // namespace
}  // namespace strata
