// Tests kernels/cpu/kv_cache.cpp: new K/V rows land in their slots and nothing else changes.
#include "kernels/cpu/kv_cache.h"

#include <algorithm>
#include <numeric>

#include "tests/engine/kernels/kernel_test_util.h"

namespace strata {
namespace {

TEST(WriteKvCache, ScattersTokensIntoTheirSlotsAndSkipsNegativeOnes) {
  STRATA_SEEDED_RNG(rng);
  for (auto [num_blocks, block_size, kv_heads, head_dim, tokens] :
       {std::tuple{4, 1, 1, 8, 3}, {16, 16, 2, 64, 40}, {8, 4, 4, 32, 20}}) {
    const int64_t slot_elems = int64_t(kv_heads) * head_dim;
    const int64_t stride = 3 * slot_elems;  // q|k|v rows of a fused projection (q as wide as k)
    const auto qkv = test::random_vector(rng, size_t(tokens) * stride);
    std::vector<int64_t> all_slots(size_t(num_blocks) * block_size);
    std::iota(all_slots.begin(), all_slots.end(), 0);
    std::shuffle(all_slots.begin(), all_slots.end(), rng);
    std::vector<int64_t> slot_mapping(all_slots.begin(), all_slots.begin() + tokens);
    slot_mapping[tokens / 2] = -1;  // padding
    const size_t cache_elems = size_t(num_blocks) * block_size * slot_elems;
    std::vector<float> k_cache = test::random_vector(rng, cache_elems);
    std::vector<float> v_cache = test::random_vector(rng, cache_elems);
    std::vector<float> expected_k = k_cache, expected_v = v_cache;
    for (int t = 0; t < tokens; ++t) {
      if (slot_mapping[t] < 0) continue;
      for (int64_t i = 0; i < slot_elems; ++i) {
        expected_k[slot_mapping[t] * slot_elems + i] = qkv[t * stride + slot_elems + i];
        expected_v[slot_mapping[t] * slot_elems + i] = qkv[t * stride + 2 * slot_elems + i];
      }
    }
    cpu::write_kv_cache(qkv.data() + slot_elems, stride, qkv.data() + 2 * slot_elems, stride, slot_mapping.data(),
                        tokens, kv_heads, head_dim, k_cache.data(), v_cache.data());
    EXPECT_TRUE(test::all_close(k_cache, expected_k, 0.0f));
    EXPECT_TRUE(test::all_close(v_cache, expected_v, 0.0f));
  }
}

}  // namespace
}  // namespace strata
