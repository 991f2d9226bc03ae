// Tests kernels/cpu/rope.cpp: inverse frequencies (default and llama3 scaling) against hand
// computed values, and the rotate-half rotation against a direct cos/sin formula.
#include "kernels/cpu/rope.h"

#include <numbers>

#include "tests/engine/kernels/kernel_test_util.h"

namespace strata {
namespace {

TEST(RopeInvFreq, DefaultIsThetaToTheMinusTwoIOverD) {
  std::vector<float> inv_freq(4);
  cpu::rope_inv_freq(8, 10000.0f, inv_freq.data());
  // 10000^(-0/8), 10000^(-2/8), 10000^(-4/8), 10000^(-6/8)
  EXPECT_TRUE(test::all_close(inv_freq, {1.0f, 0.1f, 0.01f, 0.001f}, 0.0f, 1e-6f));
}

TEST(RopeInvFreq, Llama3ScalingKeepsHighInterpolatesMiddleAndDividesLowFrequencies) {
  // head_dim 16, theta 1e4: inv_freq = 10^(-i/2), wavelen = 2*pi / inv_freq.
  // original_max_position_embeddings 2048, low_freq_factor 1, high_freq_factor 4, factor 8:
  //   wavelen < 2048/4 = 512 kept (i = 0..3); wavelen > 2048/1 = 2048 divided by 8 (i = 6, 7);
  //   i = 4: wavelen 628.3185, smooth = (2048/628.3185 - 1)/3 = 0.753170,
  //          0.01 * ((1 - smooth)/8 + smooth) = 0.0078401886
  //   i = 5: wavelen 1986.9177, smooth = (2048/1986.9177 - 1)/3 = 0.0102478,
  //          0.00316228 * ((1 - smooth)/8 + smooth) = 0.00042363925
  std::vector<float> inv_freq(8);
  cpu::rope_inv_freq(16, 10000.0f, inv_freq.data());
  cpu::rope_llama3_scale(inv_freq.data(), 8, 8.0f, 1.0f, 4.0f, 2048);
  const std::vector<float> expected = {1.0f,          0.31622776601f, 0.1f,      0.0316227766f,
                                       0.0078401886f, 0.00042363925f, 0.000125f, 3.9528470752e-05f};
  EXPECT_TRUE(test::all_close(inv_freq, expected, 0.0f, 2e-6f));
}

TEST(RopeInvFreq, Llama31DefaultsLeaveShortWavelengthsUntouched) {
  // Llama 3.1: theta 500000, factor 8, low 1, high 4, original 8192, head_dim 128.
  std::vector<float> base(64), scaled(64);
  cpu::rope_inv_freq(128, 500000.0f, base.data());
  scaled = base;
  cpu::rope_llama3_scale(scaled.data(), 64, 8.0f, 1.0f, 4.0f, 8192);
  for (int i = 0; i < 64; ++i) {
    const double wavelen = 2 * std::numbers::pi / base[i];
    if (wavelen < 2048) {
      EXPECT_EQ(scaled[i], base[i]) << i;
    } else if (wavelen > 8192) {
      EXPECT_FLOAT_EQ(scaled[i], base[i] / 8) << i;
    } else {
      EXPECT_LE(scaled[i], base[i]) << i;
      EXPECT_GE(scaled[i], base[i] / 8) << i;
    }
  }
}

// Direct formula: angle = pos * theta^(-2i/d); pairs (i, i + d/2) rotate by the angle.
void naive_rope(std::vector<float>& x, int tokens, int heads, int head_dim, int64_t stride,
                const std::vector<int32_t>& positions, float theta) {
  const int half = head_dim / 2;
  for (int t = 0; t < tokens; ++t)
    for (int h = 0; h < heads; ++h) {
      float* v = x.data() + t * stride + h * head_dim;
      for (int i = 0; i < half; ++i) {
        const double angle = positions[t] * std::pow(double(theta), -2.0 * i / head_dim);
        const double a = v[i], b = v[i + half];
        v[i] = float(a * std::cos(angle) - b * std::sin(angle));
        v[i + half] = float(b * std::cos(angle) + a * std::sin(angle));
      }
    }
}

TEST(RopeNeox, MatchesDirectCosSinFormulaOnQAndKInsideFusedRows) {
  STRATA_SEEDED_RNG(rng);
  for (auto [tokens, q_heads, k_heads, head_dim] :
       {std::tuple{1, 1, 1, 8}, {7, 4, 2, 32}, {33, 8, 8, 64}, {5, 14, 2, 128}}) {
    // q, k and v share one row as after the fused qkv projection.
    const int64_t stride = int64_t(q_heads + 2 * k_heads) * head_dim;
    auto qkv = test::random_vector(rng, size_t(tokens) * stride);
    std::vector<int32_t> positions(tokens);
    for (auto& p : positions) p = test::random_int(rng, 0, 300);
    const float theta = 10000.0f;
    std::vector<float> expected = qkv;
    {
      std::vector<float> q(size_t(tokens) * q_heads * head_dim), k(size_t(tokens) * k_heads * head_dim);
      for (int t = 0; t < tokens; ++t) {
        std::copy_n(qkv.begin() + t * stride, q_heads * head_dim, q.begin() + t * q_heads * head_dim);
        std::copy_n(qkv.begin() + t * stride + q_heads * head_dim, k_heads * head_dim,
                    k.begin() + t * k_heads * head_dim);
      }
      naive_rope(q, tokens, q_heads, head_dim, q_heads * head_dim, positions, theta);
      naive_rope(k, tokens, k_heads, head_dim, k_heads * head_dim, positions, theta);
      for (int t = 0; t < tokens; ++t) {
        std::copy_n(q.begin() + t * q_heads * head_dim, q_heads * head_dim, expected.begin() + t * stride);
        std::copy_n(k.begin() + t * k_heads * head_dim, k_heads * head_dim,
                    expected.begin() + t * stride + q_heads * head_dim);
      }
    }
    std::vector<float> inv_freq(head_dim / 2);
    cpu::rope_inv_freq(head_dim, theta, inv_freq.data());
    cpu::rope_neox(qkv.data(), stride, q_heads, qkv.data() + q_heads * head_dim, stride, k_heads, positions.data(),
                   tokens, head_dim, inv_freq.data());
    // fp32 angles at positions up to 300 carry ~1e-5 absolute phase error.
    EXPECT_TRUE(test::all_close(qkv, expected, 1e-4f)) << tokens << "x" << q_heads << "x" << head_dim;
  }
}

TEST(RopeNeox, PositionZeroIsIdentityAndRotationPreservesNorm) {
  STRATA_SEEDED_RNG(rng);
  const int head_dim = 64;
  auto q = test::random_vector(rng, 2 * head_dim);
  const auto original = q;
  std::vector<int32_t> positions = {0, 1234};
  std::vector<float> inv_freq(head_dim / 2);
  cpu::rope_inv_freq(head_dim, 500000.0f, inv_freq.data());
  cpu::rope_neox(q.data(), head_dim, 1, nullptr, 0, 0, positions.data(), 2, head_dim, inv_freq.data());
  for (int i = 0; i < head_dim; ++i) EXPECT_EQ(q[i], original[i]);
  for (int i = 0; i < head_dim / 2; ++i) {
    const float before = original[head_dim + i] * original[head_dim + i] +
                         original[head_dim + i + head_dim / 2] * original[head_dim + i + head_dim / 2];
    const float after =
        q[head_dim + i] * q[head_dim + i] + q[head_dim + i + head_dim / 2] * q[head_dim + i + head_dim / 2];
    EXPECT_NEAR(after, before, 1e-5f) << i;
  }
}

}  // namespace
}  // namespace strata
