// Tests for engine/sampling/sampler.cpp: filters, penalties, seeding, logprobs, validation.
#include "engine/sampling/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace strata {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

unsigned fresh_seed() { return std::random_device{}(); }

std::vector<float> random_logits(std::mt19937& rng, size_t vocab_size, float scale = 3.0f) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> logits(vocab_size);
  for (float& l : logits) l = normal(rng);
  return logits;
}

SamplingParams greedy_params() {
  SamplingParams p;
  p.temperature = 0.0f;
  return p;
}

// Samples a copy of `logits`, so a test can reuse its row.
SampledToken sample(std::vector<float> logits, const SamplingParams& params, const SamplingContext& ctx = {}) {
  return sample_token(logits, params, ctx);
}

int32_t sample_id(const std::vector<float>& logits, const SamplingParams& params, uint64_t seed, size_t step = 0) {
  std::vector<int32_t> output(step, 0);
  SamplingContext ctx;
  ctx.output_ids = output;
  ctx.seed = seed;
  return sample(logits, params, ctx).token_id;
}

int32_t reference_argmax(const std::vector<float>& logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

// Indices of the k largest logits (ties to lower ids).
std::set<int32_t> top_k_ids(const std::vector<float>& logits, size_t k) {
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  return {ids.begin(), ids.begin() + static_cast<ptrdiff_t>(k)};
}

std::vector<double> softmax(const std::vector<float>& logits, double temperature = 1.0) {
  const double max_logit = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double sum = 0.0;
  for (size_t i = 0; i < p.size(); ++i) sum += p[i] = std::exp((logits[i] - max_logit) / temperature);
  for (double& x : p) x /= sum;
  return p;
}

std::vector<double> log_softmax(const std::vector<float>& logits) {
  std::vector<double> p = softmax(logits);
  for (double& x : p) x = std::log(x);
  return p;
}

// Logits whose softmax is exactly `probs`.
std::vector<float> logits_for(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

// Draw counts of `num_draws` consecutive steps of one seeded request.
std::vector<int> draw_counts(const std::vector<float>& logits, const SamplingParams& params, uint64_t seed,
                             int num_draws) {
  std::vector<int> counts(logits.size(), 0);
  std::vector<int32_t> output;
  output.reserve(num_draws);
  SamplerWorkspace workspace;
  for (int step = 0; step < num_draws; ++step) {
    std::vector<float> row = logits;
    SamplingContext ctx;
    ctx.output_ids = output;
    ctx.seed = seed;
    const int32_t token = sample_token(row, params, ctx, workspace).token_id;
    ++counts[token];
    output.push_back(token);  // penalties are off in callers, so this only advances the step
  }
  return counts;
}

double chi_square(const std::vector<int>& counts, const std::vector<double>& probs, int n) {
  double chi2 = 0.0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (probs[i] == 0.0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " has probability 0";
      continue;
    }
    const double expected = probs[i] * n;
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  return chi2;
}

// ---- greedy ------------------------------------------------------------------------------

TEST(Sampler, GreedyPicksTheArgmax) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937 rng(seed);
  for (int trial = 0; trial < 50; ++trial) {
    const auto logits = random_logits(rng, 1000);
    EXPECT_EQ(sample(logits, greedy_params()).token_id, reference_argmax(logits));
  }
}

TEST(Sampler, GreedyBreaksTiesToTheLowestId) {
  EXPECT_EQ(sample({1.0f, 3.0f, 2.0f, 3.0f, 3.0f}, greedy_params()).token_id, 1);
  EXPECT_EQ(sample({kNegInf, 0.5f, 0.5f}, greedy_params()).token_id, 1);
}

TEST(Sampler, TemperatureBelowEpsilonIsGreedyWhateverTheSeed) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937 rng(seed);
  SamplingParams params;
  params.temperature = 1e-6f;
  ASSERT_TRUE(is_greedy(params));
  for (int trial = 0; trial < 50; ++trial) {
    const auto logits = random_logits(rng, 500, 0.1f);  // flat: any randomness would show
    EXPECT_EQ(sample_id(logits, params, rng(), trial), reference_argmax(logits));
  }
}

TEST(Sampler, TopKOfOneIsGreedy) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937 rng(seed);
  SamplingParams params;
  params.top_k = 1;
  for (int trial = 0; trial < 50; ++trial) {
    const auto logits = random_logits(rng, 2000, 0.1f);
    EXPECT_EQ(sample_id(logits, params, rng(), trial), reference_argmax(logits));
  }
  EXPECT_EQ(sample_id({1.0f, 3.0f, 2.0f, 3.0f}, params, 7), 1);  // ties too
}

// ---- filters -----------------------------------------------------------------------------

TEST(Sampler, TopKRestrictsSupportToTheKBestTokens) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937 rng(seed);
  const auto logits = random_logits(rng, 1000, 0.5f);
  const auto allowed = top_k_ids(logits, 5);
  SamplingParams params;
  params.top_k = 5;
  std::set<int32_t> seen;
  for (int draw = 0; draw < 2000; ++draw) {
    const int32_t token = sample_id(logits, params, rng(), draw % 7);
    ASSERT_TRUE(allowed.count(token)) << "token " << token << " is outside the top 5";
    seen.insert(token);
  }
  EXPECT_EQ(seen.size(), 5u);
}

TEST(Sampler, TopPRestrictsSupportToTheNucleus) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  const auto logits = logits_for({0.04, 0.5, 0.1, 0.3, 0.06});
  SamplingParams params;
  params.top_p = 0.75f;  // 0.5 + 0.3 is the smallest prefix reaching 0.75
  const auto counts = draw_counts(logits, params, seed, 4000);
  EXPECT_EQ(counts[0] + counts[2] + counts[4], 0);
  EXPECT_GT(counts[1], 0);
  EXPECT_GT(counts[3], 0);
  // Renormalized over the nucleus: 0.5 / 0.8 and 0.3 / 0.8.
  EXPECT_LT(chi_square(counts, {0, 0.625, 0, 0.375, 0}, 4000), 20.0);
}

TEST(Sampler, TopPKeepsAtLeastTheBestToken) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937 rng(seed);
  SamplingParams params;
  params.top_p = 1e-6f;
  for (int trial = 0; trial < 50; ++trial) {
    const auto logits = random_logits(rng, 300, 0.1f);
    EXPECT_EQ(sample_id(logits, params, rng(), trial), reference_argmax(logits));
  }
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheBestProbability) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  const auto logits = logits_for({0.5, 0.3, 0.1, 0.06, 0.04});
  SamplingParams params;
  params.min_p = 0.15f;  // threshold 0.075: keeps 0.5, 0.3, 0.1
  const auto counts = draw_counts(logits, params, seed, 4000);
  EXPECT_EQ(counts[3] + counts[4], 0);
  EXPECT_GT(counts[2], 0);
  EXPECT_LT(chi_square(counts, {0.5 / 0.9, 0.3 / 0.9, 0.1 / 0.9, 0, 0}, 4000), 20.0);
}

// ---- penalties and bias ------------------------------------------------------------------

TEST(Sampler, RepetitionPenaltyDividesPositiveLogitsOfPromptTokens) {
  SamplingParams params = greedy_params();
  params.repetition_penalty = 2.0f;
  const std::vector<int32_t> prompt = {0, 0, 0};  // once per distinct token, whatever the count
  SamplingContext ctx;
  ctx.prompt_ids = prompt;
  EXPECT_EQ(sample({4.0f, 1.9f}, params, ctx).token_id, 0);  // 4 / 2 = 2 > 1.9
  EXPECT_EQ(sample({4.0f, 2.1f}, params, ctx).token_id, 1);  // 2 < 2.1
}

TEST(Sampler, RepetitionPenaltyMultipliesNegativeLogitsOfOutputTokens) {
  SamplingParams params = greedy_params();
  params.repetition_penalty = 2.0f;
  const std::vector<int32_t> output = {0};
  SamplingContext ctx;
  ctx.output_ids = output;
  EXPECT_EQ(sample({-1.0f, -1.9f}, params, ctx).token_id, 1);  // -1 * 2 = -2 < -1.9
  EXPECT_EQ(sample({-1.0f, -2.1f}, params, ctx).token_id, 0);  // -2 > -2.1
}

TEST(Sampler, RepetitionPenaltyBelowOneFavoursSeenTokens) {
  SamplingParams params = greedy_params();
  params.repetition_penalty = 0.5f;
  const std::vector<int32_t> prompt = {1};
  SamplingContext ctx;
  ctx.prompt_ids = prompt;
  EXPECT_EQ(sample({1.9f, 1.0f}, params, ctx).token_id, 1);  // 1 / 0.5 = 2 > 1.9
}

TEST(Sampler, FrequencyPenaltyScalesWithTheOutputCount) {
  SamplingParams params = greedy_params();
  params.frequency_penalty = 0.5f;
  const std::vector<int32_t> output = {0, 0, 0};
  SamplingContext ctx;
  ctx.output_ids = output;
  EXPECT_EQ(sample({3.0f, 1.4f}, params, ctx).token_id, 0);  // 3 - 1.5 = 1.5 > 1.4
  EXPECT_EQ(sample({3.0f, 1.6f}, params, ctx).token_id, 1);  // 1.5 < 1.6
}

TEST(Sampler, PresencePenaltyAppliesOnceWhateverTheCount) {
  SamplingParams params = greedy_params();
  params.presence_penalty = 0.5f;
  const std::vector<int32_t> output = {0, 0, 0};
  SamplingContext ctx;
  ctx.output_ids = output;
  EXPECT_EQ(sample({3.0f, 2.4f}, params, ctx).token_id, 0);  // 3 - 0.5 = 2.5 > 2.4
  EXPECT_EQ(sample({3.0f, 2.6f}, params, ctx).token_id, 1);  // 2.5 < 2.6
}

TEST(Sampler, FrequencyAndPresencePenaltiesAddUp) {
  SamplingParams params = greedy_params();
  params.frequency_penalty = 0.4f;
  params.presence_penalty = 0.3f;
  const std::vector<int32_t> output = {0, 2, 0};
  SamplingContext ctx;
  ctx.output_ids = output;
  // 3 - (0.4 * 2 + 0.3) = 1.9
  EXPECT_EQ(sample({3.0f, 1.8f, kNegInf}, params, ctx).token_id, 0);
  EXPECT_EQ(sample({3.0f, 2.0f, kNegInf}, params, ctx).token_id, 1);
}

TEST(Sampler, NegativeFrequencyPenaltyFavoursRepeats) {
  SamplingParams params = greedy_params();
  params.frequency_penalty = -1.0f;
  const std::vector<int32_t> output = {1, 1};
  SamplingContext ctx;
  ctx.output_ids = output;
  EXPECT_EQ(sample({3.0f, 1.5f}, params, ctx).token_id, 1);  // 1.5 + 2 = 3.5
}

TEST(Sampler, FrequencyAndPresencePenaltiesIgnorePromptTokens) {
  SamplingParams params = greedy_params();
  params.frequency_penalty = 2.0f;
  params.presence_penalty = 2.0f;
  const std::vector<int32_t> prompt = {0, 0, 0, 0};
  SamplingContext ctx;
  ctx.prompt_ids = prompt;
  EXPECT_EQ(sample({3.0f, 2.9f}, params, ctx).token_id, 0);
}

TEST(Sampler, LogitBiasCanForceAToken) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937 rng(seed);
  const auto logits = random_logits(rng, 1000, 2.0f);
  const int32_t forced = static_cast<int32_t>(rng() % logits.size());
  SamplingParams params;
  params.logit_bias = {{forced, 100.0f}};
  for (int draw = 0; draw < 200; ++draw) EXPECT_EQ(sample_id(logits, params, rng(), draw), forced);
}

TEST(Sampler, NegativeLogitBiasCanBanAToken) {
  SamplingParams params = greedy_params();
  params.logit_bias = {{2, -100.0f}};
  EXPECT_EQ(sample({1.0f, 2.0f, 50.0f}, params).token_id, 1);
}

TEST(Sampler, MinTokensMasksEosAndStopTokensUntilReached) {
  const std::vector<float> logits = {1.0f, 9.0f, 2.0f, 8.0f};
  const std::vector<int32_t> eos = {1};
  SamplingParams params = greedy_params();
  params.min_tokens = 2;
  params.stop_token_ids = {3};
  std::vector<int32_t> output = {2};
  SamplingContext ctx;
  ctx.eos_ids = eos;
  ctx.output_ids = output;
  EXPECT_EQ(sample(logits, params, ctx).token_id, 2);  // 1 < min_tokens: EOS and stop masked
  output.push_back(2);
  ctx.output_ids = output;
  EXPECT_EQ(sample(logits, params, ctx).token_id, 1);  // min_tokens reached
}

TEST(Sampler, MinTokensMasksEosUnderRandomSampling) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937 rng(seed);
  const std::vector<float> logits = {0.0f, 5.0f, 0.0f};
  const std::vector<int32_t> eos = {1};
  SamplingParams params;
  params.min_tokens = 100;
  for (int draw = 0; draw < 200; ++draw) {
    SamplingContext ctx;
    ctx.eos_ids = eos;
    ctx.seed = rng();
    EXPECT_NE(sample(logits, params, ctx).token_id, 1);
  }
}

// ---- seeding -----------------------------------------------------------------------------

TEST(Sampler, SameSeedAndStepGiveTheSameToken) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937 rng(seed);
  const auto logits = random_logits(rng, 5000, 0.3f);
  SamplingParams params;
  params.top_p = 0.95f;
  for (int trial = 0; trial < 50; ++trial) {
    const uint64_t request_seed = (static_cast<uint64_t>(rng()) << 32) | rng();
    const size_t step = rng() % 100;
    EXPECT_EQ(sample_id(logits, params, request_seed, step), sample_id(logits, params, request_seed, step));
  }
}

TEST(Sampler, DrawVariesWithTheStepAndTheSeed) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937 rng(seed);
  const auto logits = random_logits(rng, 5000, 0.3f);  // near-flat: repeats are rare
  SamplingParams params;
  std::set<int32_t> over_steps, over_seeds;
  const uint64_t request_seed = rng();
  for (size_t step = 0; step < 50; ++step) over_steps.insert(sample_id(logits, params, request_seed, step));
  for (uint64_t s = 0; s < 50; ++s) over_seeds.insert(sample_id(logits, params, s, 3));
  EXPECT_GT(over_steps.size(), 40u);
  EXPECT_GT(over_seeds.size(), 40u);
}

TEST(Sampler, UniformDrawIsAPureFunctionInTheUnitInterval) {
  double sum = 0.0;
  for (uint64_t step = 0; step < 10000; ++step) {
    const double u = sampling_uniform(42, step);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    ASSERT_EQ(u, sampling_uniform(42, step));
    sum += u;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.015);  // 5 standard errors of sqrt(1/12 / 10000)
  EXPECT_NE(sampling_uniform(1, 0), sampling_uniform(2, 0));
}

TEST(Sampler, DrawsFollowTheSoftmax) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 1.5f};
  const int n = 20000;
  const auto counts = draw_counts(logits, SamplingParams{}, seed, n);
  const auto probs = softmax(logits);
  // 4 degrees of freedom: P(chi2 > 25) is about 5e-5.
  EXPECT_LT(chi_square(counts, probs, n), 25.0);
  for (size_t i = 0; i < probs.size(); ++i) {
    const double standard_error = std::sqrt(probs[i] * (1 - probs[i]) / n);
    EXPECT_NEAR(counts[i] / double(n), probs[i], 5 * standard_error) << "token " << i;
  }
}

TEST(Sampler, DrawsFollowTheTemperedTopKDistribution) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 1.5f};
  SamplingParams params;
  params.temperature = 0.5f;
  params.top_k = 3;  // tokens 1, 4, 0
  const int n = 20000;
  const auto counts = draw_counts(logits, params, seed, n);
  auto probs = softmax({1.0f, 2.0f, kNegInf, kNegInf, 1.5f}, 0.5);
  EXPECT_LT(chi_square(counts, probs, n), 25.0);
}

// ---- logprobs ----------------------------------------------------------------------------

TEST(Sampler, LogprobsAreLogSoftmaxOfTheRawLogits) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937 rng(seed);
  const auto logits = random_logits(rng, 100);
  const auto expected = log_softmax(logits);
  SamplingParams params;
  params.temperature = 0.7f;
  params.repetition_penalty = 1.3f;
  params.frequency_penalty = 0.5f;
  params.logit_bias = {{7, 5.0f}, {8, -3.0f}};
  params.logprobs = 5;
  const std::vector<int32_t> prompt = {7, 8, 9}, output = {7, 10, 11};
  for (int trial = 0; trial < 100; ++trial) {
    SamplingContext ctx;
    ctx.prompt_ids = prompt;
    ctx.output_ids = output;
    ctx.seed = rng();
    const SampledToken got = sample(logits, params, ctx);
    EXPECT_NEAR(got.logprob, expected[got.token_id], 1e-5) << "token " << got.token_id;
    ASSERT_EQ(got.top.size(), 5u);
    const auto best = top_k_ids(logits, 5);
    for (size_t i = 0; i < got.top.size(); ++i) {
      EXPECT_TRUE(best.count(got.top[i].token_id));
      EXPECT_NEAR(got.top[i].logprob, expected[got.top[i].token_id], 1e-5);
      if (i > 0) {
        EXPECT_GE(got.top[i - 1].logprob, got.top[i].logprob);
      }
    }
  }
}

TEST(Sampler, LogprobsTopListBreaksTiesToTheLowerId) {
  SamplingParams params = greedy_params();
  params.logprobs = 3;
  const SampledToken got = sample({0.0f, 2.0f, 1.0f, 2.0f, 1.0f, 2.0f}, params);
  ASSERT_EQ(got.top.size(), 3u);
  EXPECT_EQ(got.top[0].token_id, 1);
  EXPECT_EQ(got.top[1].token_id, 3);
  EXPECT_EQ(got.top[2].token_id, 5);
}

TEST(Sampler, LogprobsZeroReportsOnlyTheSampledToken) {
  SamplingParams params = greedy_params();
  params.logprobs = 0;
  params.logit_bias = {{0, 10.0f}};
  const std::vector<float> logits = {0.0f, 1.0f, 2.0f};
  const SampledToken got = sample(logits, params);
  EXPECT_EQ(got.token_id, 0);
  EXPECT_TRUE(got.top.empty());
  EXPECT_NEAR(got.logprob, log_softmax(logits)[0], 1e-6);  // the raw, unbiased logprob
}

TEST(Sampler, LogprobsAskedForMoreThanTheVocabularyListEveryToken) {
  SamplingParams params = greedy_params();
  params.logprobs = 20;
  EXPECT_EQ(sample({0.0f, 1.0f, 2.0f}, params).top.size(), 3u);
}

TEST(Sampler, LogprobsOfAMinTokensMaskedEosStayRaw) {
  SamplingParams params;
  params.logprobs = 2;
  params.min_tokens = 1;
  const std::vector<int32_t> eos = {1};
  SamplingContext ctx;
  ctx.eos_ids = eos;
  const std::vector<float> logits = {0.0f, 3.0f};
  const SampledToken got = sample(logits, params, ctx);
  EXPECT_EQ(got.token_id, 0);
  ASSERT_EQ(got.top.size(), 2u);
  EXPECT_EQ(got.top[0].token_id, 1);
  EXPECT_NEAR(got.top[0].logprob, log_softmax(logits)[1], 1e-6);
}

// ---- against a plain reference -----------------------------------------------------------

// The documented pipeline written the obvious way: full sorts, no workspace.
int32_t reference_sample(std::vector<float> logits, const SamplingParams& params, const SamplingContext& ctx) {
  const auto vocab_size = static_cast<int32_t>(logits.size());
  for (const auto& [id, bias] : params.logit_bias) logits[id] += bias;
  if (ctx.output_ids.size() < static_cast<size_t>(params.min_tokens)) {
    for (int32_t id : ctx.eos_ids) logits[id] = kNegInf;
    for (int32_t id : params.stop_token_ids) logits[id] = kNegInf;
  }
  if (params.repetition_penalty != 1.0f) {
    std::set<int32_t> seen(ctx.prompt_ids.begin(), ctx.prompt_ids.end());
    seen.insert(ctx.output_ids.begin(), ctx.output_ids.end());
    for (int32_t id : seen) {
      logits[id] = logits[id] > 0 ? logits[id] / params.repetition_penalty : logits[id] * params.repetition_penalty;
    }
  }
  std::map<int32_t, int> counts;
  for (int32_t id : ctx.output_ids) ++counts[id];
  if (params.frequency_penalty != 0.0f || params.presence_penalty != 0.0f) {
    for (const auto& [id, count] : counts) {
      logits[id] -= params.frequency_penalty * static_cast<float>(count) + params.presence_penalty;
    }
  }
  if (params.temperature < 1e-5f) return reference_argmax(logits);

  const float max_logit = *std::max_element(logits.begin(), logits.end());
  std::vector<std::pair<float, int32_t>> ranked;  // (logit, then weight; id)
  for (int32_t id = 0; id < vocab_size; ++id) {
    if (logits[id] > kNegInf) ranked.emplace_back(logits[id], id);
  }
  auto canonical = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  std::sort(ranked.begin(), ranked.end(), canonical);
  if (params.top_k > 0 && static_cast<size_t>(params.top_k) < ranked.size()) ranked.resize(params.top_k);
  double mass = 0.0;
  for (auto& [weight, id] : ranked) {
    weight = std::exp((weight - max_logit) / params.temperature);
    mass += weight;
  }
  std::sort(ranked.begin(), ranked.end(), canonical);
  size_t kept = ranked.size();
  if (params.top_p < 1.0f) {
    double cumulative = 0.0;
    for (kept = 0; kept < ranked.size();) {
      cumulative += ranked[kept++].first;
      if (cumulative >= params.top_p * mass) break;
    }
  }
  size_t above_min_p = 0;
  while (above_min_p < ranked.size() && ranked[above_min_p].first > 0 && ranked[above_min_p].first >= params.min_p) {
    ++above_min_p;
  }
  kept = std::min(kept, above_min_p);
  double kept_mass = 0.0;
  for (size_t i = 0; i < kept; ++i) kept_mass += ranked[i].first;
  const double target = sampling_uniform(ctx.seed, ctx.output_ids.size()) * kept_mass;
  double cumulative = 0.0;
  for (size_t i = 0; i < kept; ++i) {
    cumulative += ranked[i].first;
    if (target < cumulative) return ranked[i].second;
  }
  return ranked[kept - 1].second;
}

TEST(Sampler, MatchesThePlainReferenceOnRandomRequests) {
  const unsigned seed = fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937 rng(seed);
  auto pick = [&rng](auto... options) {
    const std::vector<std::common_type_t<decltype(options)...>> v = {options...};
    return v[rng() % v.size()];
  };
  SamplerWorkspace workspace;  // shared across sizes and params, as in the engine loop
  for (int trial = 0; trial < 400; ++trial) {
    const size_t vocab_size = trial % 50 == 0 ? 152064 : pick(size_t{7}, size_t{100}, size_t{3000});
    auto logits = random_logits(rng, vocab_size, pick(0.3f, 1.0f, 3.0f, 10.0f));
    if (rng() % 3 == 0) {  // quantize to create ties
      for (float& l : logits) l = std::round(l * 2) / 2;
    }
    SamplingParams params;
    params.temperature = pick(0.0f, 0.3f, 0.7f, 1.0f, 1.5f);
    params.top_k = pick(-1, 0, 1, 5, 50, static_cast<int>(vocab_size / 2), static_cast<int>(vocab_size) + 3);
    params.top_p = pick(1.0f, 0.95f, 0.5f, 0.1f);
    params.min_p = pick(0.0f, 0.0f, 0.05f, 0.3f);
    params.repetition_penalty = pick(1.0f, 1.0f, 1.3f, 0.8f);
    params.frequency_penalty = pick(0.0f, 0.7f, -0.5f);
    params.presence_penalty = pick(0.0f, 0.4f, -1.0f);
    params.min_tokens = pick(0, 3);
    std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(vocab_size) - 1);
    for (int i = 0; i < 3; ++i) params.logit_bias.emplace_back(token(rng), pick(5.0f, -5.0f, 100.0f));
    if (rng() % 2 == 0) params.logit_bias.clear();
    params.stop_token_ids = {token(rng)};
    params.logprobs = pick(-1, 0, 3);
    std::vector<int32_t> prompt(rng() % 20), output(rng() % 6);
    for (int32_t& t : prompt) t = token(rng);
    for (int32_t& t : output) t = token(rng);
    const std::vector<int32_t> eos = {token(rng)};
    SamplingContext ctx;
    ctx.prompt_ids = prompt;
    ctx.output_ids = output;
    ctx.eos_ids = eos;
    ctx.seed = (static_cast<uint64_t>(rng()) << 32) | rng();
    std::vector<float> row = logits;
    const SampledToken got = sample_token(row, params, ctx, workspace);
    ASSERT_EQ(got.token_id, reference_sample(logits, params, ctx))
        << "trial " << trial << " vocab " << vocab_size << " temperature " << params.temperature << " top_k "
        << params.top_k << " top_p " << params.top_p << " min_p " << params.min_p;
    if (params.logprobs >= 0) {
      EXPECT_NEAR(got.logprob, log_softmax(logits)[got.token_id], 1e-4);
    }
  }
}

// ---- validation --------------------------------------------------------------------------

TEST(ValidateSamplingParams, AcceptsDefaultsAndBoundaryValues) {
  EXPECT_TRUE(validate_sampling_params(SamplingParams{}, 32000).ok());
  SamplingParams params;
  params.temperature = 0.0f;
  params.top_p = 1.0f;
  params.top_k = -1;
  params.min_p = 1.0f;
  params.repetition_penalty = 0.01f;
  params.presence_penalty = -2.0f;
  params.frequency_penalty = 2.0f;
  params.logit_bias = {{0, -100.0f}, {31999, 100.0f}};
  params.max_tokens = 1;
  params.min_tokens = 1;
  params.logprobs = 20;
  params.stop_token_ids = {0, 31999};
  EXPECT_TRUE(validate_sampling_params(params, 32000).ok());
  params.temperature = 5.0f;  // vLLM accepts any finite temperature >= 0
  params.top_k = 0;
  params.logprobs = -1;
  EXPECT_TRUE(validate_sampling_params(params, 32000).ok());
}

TEST(ValidateSamplingParams, MessageNamesTheFieldAndTheValue) {
  SamplingParams params;
  params.top_p = 1.5f;
  const Status status = validate_sampling_params(params, 32000);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "top_p must be in (0, 1], got 1.5");
}

struct BadParamsCase {
  std::string name;
  std::string field;  // must appear in the message
  void (*spoil)(SamplingParams&);
};

class ValidateSamplingParamsRejects : public testing::TestWithParam<BadParamsCase> {};

TEST_P(ValidateSamplingParamsRejects, TheBadField) {
  SamplingParams params;
  GetParam().spoil(params);
  const Status status = validate_sampling_params(params, 32000);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message().rfind(GetParam().field, 0), 0u) << status.message();
}

INSTANTIATE_TEST_SUITE_P(
    EachField, ValidateSamplingParamsRejects,
    testing::Values(
        BadParamsCase{"NegativeTemperature", "temperature", [](SamplingParams& p) { p.temperature = -0.1f; }},
        BadParamsCase{"InfiniteTemperature", "temperature",
                      [](SamplingParams& p) { p.temperature = std::numeric_limits<float>::infinity(); }},
        BadParamsCase{"NanTemperature", "temperature",
                      [](SamplingParams& p) { p.temperature = std::numeric_limits<float>::quiet_NaN(); }},
        BadParamsCase{"TopPZero", "top_p", [](SamplingParams& p) { p.top_p = 0.0f; }},
        BadParamsCase{"TopPAboveOne", "top_p", [](SamplingParams& p) { p.top_p = 1.01f; }},
        BadParamsCase{"TopKBelowMinusOne", "top_k", [](SamplingParams& p) { p.top_k = -2; }},
        BadParamsCase{"MinPNegative", "min_p", [](SamplingParams& p) { p.min_p = -0.1f; }},
        BadParamsCase{"MinPAboveOne", "min_p", [](SamplingParams& p) { p.min_p = 1.1f; }},
        BadParamsCase{"RepetitionPenaltyZero", "repetition_penalty",
                      [](SamplingParams& p) { p.repetition_penalty = 0.0f; }},
        BadParamsCase{"PresencePenaltyTooLarge", "presence_penalty",
                      [](SamplingParams& p) { p.presence_penalty = 2.5f; }},
        BadParamsCase{"FrequencyPenaltyTooSmall", "frequency_penalty",
                      [](SamplingParams& p) { p.frequency_penalty = -2.5f; }},
        BadParamsCase{"LogitBiasIdOutOfVocab", "logit_bias token id",
                      [](SamplingParams& p) {
                        p.logit_bias = {{32000, 1.0f}};
                      }},
        BadParamsCase{"LogitBiasIdNegative", "logit_bias token id",
                      [](SamplingParams& p) {
                        p.logit_bias = {{-1, 1.0f}};
                      }},
        BadParamsCase{"LogitBiasTooLarge", "logit_bias for token 5",
                      [](SamplingParams& p) {
                        p.logit_bias = {{5, 100.5f}};
                      }},
        BadParamsCase{"MaxTokensZero", "max_tokens", [](SamplingParams& p) { p.max_tokens = 0; }},
        BadParamsCase{"MinTokensNegative", "min_tokens", [](SamplingParams& p) { p.min_tokens = -1; }},
        BadParamsCase{"MinTokensAboveMaxTokens", "min_tokens",
                      [](SamplingParams& p) {
                        p.max_tokens = 4;
                        p.min_tokens = 5;
                      }},
        BadParamsCase{"LogprobsBelowMinusOne", "logprobs", [](SamplingParams& p) { p.logprobs = -2; }},
        BadParamsCase{"LogprobsAboveTwenty", "logprobs", [](SamplingParams& p) { p.logprobs = 21; }},
        BadParamsCase{"StopTokenOutOfVocab", "stop_token_ids", [](SamplingParams& p) { p.stop_token_ids = {40000}; }}),
    [](const testing::TestParamInfo<BadParamsCase>& info) { return info.param.name; });

}  // namespace
}  // namespace strata
