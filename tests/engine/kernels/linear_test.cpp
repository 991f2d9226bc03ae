// Tests kernels/cpu/linear.cpp (y = x W^T + b) against a triple loop.
#include "kernels/cpu/linear.h"

#include "tests/engine/kernels/kernel_test_util.h"

namespace strata {
namespace {

TEST(Linear, MatchesNaiveWithAndWithoutBias) {
  STRATA_SEEDED_RNG(rng);
  for (auto [rows, in, out_features] : {std::tuple{1, 16, 8},
                                        {1, 256, 1000},
                                        {1, 512, 1000},
                                        {2, 64, 64},
                                        {7, 33, 65},
                                        {3, 300, 1001},
                                        {130, 256, 384}}) {
    for (bool with_bias : {false, true}) {
      const auto x = test::random_vector(rng, size_t(rows) * in);
      const auto w = test::random_vector(rng, size_t(out_features) * in);
      const auto b = test::random_vector(rng, out_features);
      std::vector<float> y(size_t(rows) * out_features, 123.0f);
      cpu::linear(x.data(), w.data(), with_bias ? b.data() : nullptr, y.data(), rows, in, out_features);
      std::vector<float> expected(y.size());
      for (int r = 0; r < rows; ++r)
        for (int o = 0; o < out_features; ++o) {
          double acc = with_bias ? b[o] : 0.0;
          for (int i = 0; i < in; ++i) acc += double(x[r * in + i]) * w[o * in + i];
          expected[r * out_features + o] = float(acc);
        }
      EXPECT_TRUE(test::all_close(y, expected, 1e-4f, 1e-5f))
          << rows << "x" << in << "->" << out_features << " bias " << with_bias;
    }
  }
}

}  // namespace
}  // namespace strata
