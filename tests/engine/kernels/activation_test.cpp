// Tests kernels/cpu/activation.cpp (SwiGLU) against the formula silu(g) * u.
#include "kernels/cpu/activation.h"

#include "tests/engine/kernels/kernel_test_util.h"

namespace strata {
namespace {

float naive_silu_mul(float g, float u) { return float(g / (1.0 + std::exp(-double(g))) * u); }

TEST(SiluAndMul, MatchesFormulaOnFusedGateUp) {
  STRATA_SEEDED_RNG(rng);
  for (auto [tokens, dim] : {std::pair{1, 8}, {5, 96}, {64, 1024}, {3, 4864}}) {
    const auto gate_up = test::random_vector(rng, size_t(tokens) * 2 * dim, -8, 8);
    std::vector<float> out(size_t(tokens) * dim);
    cpu::silu_and_mul(gate_up.data(), out.data(), tokens, dim);
    std::vector<float> expected(out.size());
    for (int t = 0; t < tokens; ++t)
      for (int i = 0; i < dim; ++i)
        expected[t * dim + i] = naive_silu_mul(gate_up[t * 2 * dim + i], gate_up[t * 2 * dim + dim + i]);
    EXPECT_TRUE(test::all_close(out, expected, 1e-6f, 1e-5f)) << tokens << "x" << dim;
  }
}

TEST(SiluMul, MatchesFormulaOnSeparateInputs) {
  STRATA_SEEDED_RNG(rng);
  for (int64_t n : {1, 7, 4096, 100003}) {
    const auto gate = test::random_vector(rng, n, -20, 20);
    const auto up = test::random_vector(rng, n, -2, 2);
    std::vector<float> out(n);
    cpu::silu_mul(gate.data(), up.data(), out.data(), n);
    std::vector<float> expected(n);
    for (int64_t i = 0; i < n; ++i) expected[i] = naive_silu_mul(gate[i], up[i]);
    EXPECT_TRUE(test::all_close(out, expected, 1e-6f, 1e-5f)) << n;
  }
}

}  // namespace
}  // namespace strata
