// Helpers shared by the CPU kernel tests: seeded random inputs and tensor comparison.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace strata::test {

// A fresh seed per test run; STRATA_TEST_SEED=<n> replays a failing run.
inline uint64_t test_seed() {
  if (const char* env = std::getenv("STRATA_TEST_SEED")) return std::strtoull(env, nullptr, 10);
  return std::random_device{}();
}

// Declares `rng` seeded freshly and attaches the seed to every failure in scope.
#define STRATA_SEEDED_RNG(rng)                                                \
  const uint64_t rng##_seed = ::strata::test::test_seed();                    \
  SCOPED_TRACE("seed " + std::to_string(rng##_seed) + " (STRATA_TEST_SEED)"); \
  std::mt19937_64 rng(rng##_seed)

inline std::vector<float> random_vector(std::mt19937_64& rng, size_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

inline int random_int(std::mt19937_64& rng, int lo, int hi) {  // inclusive
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}

// Max |a - b| with a relative allowance: passes when |a-b| <= atol + rtol * |b| everywhere.
inline ::testing::AssertionResult all_close(const std::vector<float>& actual, const std::vector<float>& expected,
                                            float atol, float rtol = 0.0f) {
  if (actual.size() != expected.size()) {
    return ::testing::AssertionFailure() << "size " << actual.size() << " != expected " << expected.size();
  }
  for (size_t i = 0; i < actual.size(); ++i) {
    const float diff = std::fabs(actual[i] - expected[i]);
    if (!(diff <= atol + rtol * std::fabs(expected[i]))) {
      return ::testing::AssertionFailure()
             << "at " << i << ": " << actual[i] << " vs expected " << expected[i] << " (diff " << diff << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace strata::test
