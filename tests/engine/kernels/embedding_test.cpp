// Tests kernels/cpu/embedding.cpp against a direct row copy.
#include "kernels/cpu/embedding.h"

#include "tests/engine/kernels/kernel_test_util.h"

namespace strata {
namespace {

TEST(EmbeddingLookup, CopiesTheRowOfEachToken) {
  STRATA_SEEDED_RNG(rng);
  for (auto [vocab, hidden, num_tokens] : {std::tuple{7, 5, 1}, {100, 64, 13}, {1000, 256, 300}}) {
    const auto table = test::random_vector(rng, static_cast<size_t>(vocab) * hidden);
    std::vector<int32_t> ids(num_tokens);
    for (auto& id : ids) id = test::random_int(rng, 0, vocab - 1);
    std::vector<float> out(static_cast<size_t>(num_tokens) * hidden, -7.0f);
    cpu::embedding_lookup(ids.data(), num_tokens, table.data(), hidden, out.data());
    std::vector<float> expected(out.size());
    for (int t = 0; t < num_tokens; ++t)
      for (int i = 0; i < hidden; ++i) expected[t * hidden + i] = table[ids[t] * hidden + i];
    EXPECT_TRUE(test::all_close(out, expected, 0.0f)) << vocab << "x" << hidden;
  }
}

}  // namespace
}  // namespace strata
