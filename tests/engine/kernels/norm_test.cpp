// Tests kernels/cpu/norm.cpp (RMSNorm, fused add + RMSNorm, per-head RMSNorm) against
// straightforward loops.
#include "kernels/cpu/norm.h"

#include "tests/engine/kernels/kernel_test_util.h"

namespace strata {
namespace {

std::vector<float> naive_rms_norm(const std::vector<float>& x, const std::vector<float>& w, int rows, int dim,
                                  float eps) {
  std::vector<float> out(x.size());
  for (int r = 0; r < rows; ++r) {
    double sum_sq = 0;
    for (int i = 0; i < dim; ++i) sum_sq += double(x[r * dim + i]) * x[r * dim + i];
    const double inv = 1.0 / std::sqrt(sum_sq / dim + eps);
    for (int i = 0; i < dim; ++i) out[r * dim + i] = float(x[r * dim + i] * inv * w[i]);
  }
  return out;
}

const std::vector<std::pair<int, int>> kShapes = {{1, 8}, {3, 64}, {17, 128}, {300, 896}, {5, 4096}};

TEST(RmsNorm, MatchesNaive) {
  STRATA_SEEDED_RNG(rng);
  for (auto [rows, dim] : kShapes) {
    const auto x = test::random_vector(rng, size_t(rows) * dim, -3, 3);
    const auto w = test::random_vector(rng, dim, 0.5f, 1.5f);
    std::vector<float> out(x.size());
    cpu::rms_norm(x.data(), w.data(), out.data(), rows, dim, 1e-6f);
    EXPECT_TRUE(test::all_close(out, naive_rms_norm(x, w, rows, dim, 1e-6f), 1e-5f, 1e-5f)) << rows << "x" << dim;
  }
}

TEST(RmsNorm, InPlaceMatchesOutOfPlace) {
  STRATA_SEEDED_RNG(rng);
  const int rows = 9, dim = 96;
  auto x = test::random_vector(rng, size_t(rows) * dim);
  const auto w = test::random_vector(rng, dim);
  std::vector<float> out(x.size());
  cpu::rms_norm(x.data(), w.data(), out.data(), rows, dim, 1e-5f);
  cpu::rms_norm(x.data(), w.data(), x.data(), rows, dim, 1e-5f);
  EXPECT_TRUE(test::all_close(x, out, 0.0f));
}

TEST(FusedAddRmsNorm, AddsIntoResidualThenNormalizes) {
  STRATA_SEEDED_RNG(rng);
  for (auto [rows, dim] : kShapes) {
    auto residual = test::random_vector(rng, size_t(rows) * dim, -2, 2);
    const auto x = test::random_vector(rng, size_t(rows) * dim, -2, 2);
    const auto w = test::random_vector(rng, dim, 0.5f, 1.5f);
    std::vector<float> expected_residual(residual.size());
    for (size_t i = 0; i < residual.size(); ++i) expected_residual[i] = residual[i] + x[i];
    std::vector<float> out(x.size());
    cpu::fused_add_rms_norm(residual.data(), x.data(), w.data(), out.data(), rows, dim, 1e-6f);
    EXPECT_TRUE(test::all_close(residual, expected_residual, 0.0f));
    EXPECT_TRUE(test::all_close(out, naive_rms_norm(expected_residual, w, rows, dim, 1e-6f), 1e-5f, 1e-5f))
        << rows << "x" << dim;
  }
}

TEST(HeadRmsNorm, NormalizesEachHeadOfAStridedBuffer) {
  STRATA_SEEDED_RNG(rng);
  for (auto [tokens, heads, head_dim, extra] :
       {std::tuple{1, 1, 8, 0}, {5, 4, 32, 16}, {37, 16, 128, 256}, {3, 2, 64, 64}}) {
    const int64_t stride = int64_t(heads) * head_dim + extra;  // e.g. q inside a fused qkv row
    auto buffer = test::random_vector(rng, size_t(tokens) * stride, -3, 3);
    const auto w = test::random_vector(rng, head_dim, 0.5f, 1.5f);
    std::vector<float> expected = buffer;
    for (int t = 0; t < tokens; ++t) {
      std::vector<float> rows(buffer.begin() + t * stride, buffer.begin() + t * stride + heads * head_dim);
      const auto normed = naive_rms_norm(rows, w, heads, head_dim, 1e-6f);
      std::copy(normed.begin(), normed.end(), expected.begin() + t * stride);
    }
    cpu::head_rms_norm(buffer.data(), tokens, heads, head_dim, stride, w.data(), 1e-6f);
    EXPECT_TRUE(test::all_close(buffer, expected, 1e-5f, 1e-5f)) << tokens << "x" << heads;
  }
}

}  // namespace
}  // namespace strata
