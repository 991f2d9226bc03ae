// Tests kernels/cuda/sampling.cu against the CPU sampler it mirrors (engine/sampling/sampler.cpp):
// same tokens, logprobs within 1e-4 and the same edited logits, on fresh random rows.
#include "kernels/cuda/sampling.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/sampling/sampler.h"
#include "engine/sampling/sampling_params.h"
#include "tests/kernels/cuda/cuda_test_util.h"

namespace strata {
namespace {

using test::DeviceBuffer;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kLogprobTolerance = 1e-4f;

// The GPU's weights are correctly rounded and glibc's expf is within 0.502 ulp, so a weight may
// differ by 1 ulp (1.2e-7 relative) and a prefix sum of them by 1.2e-7 of the total. Rows with
// a decision (min_p, top-p cut, draw, order of two weights) closer than this to its boundary
// could legitimately go either way; the test draws another row instead (8x headroom).
constexpr double kBoundaryMargin = 1e-6;
constexpr int kMaxAttempts = 200;

// One request: params, context and its logits row.
struct RowCase {
  SamplingParams params;
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> output_ids;
  std::vector<int32_t> eos_ids;
  uint64_t seed = 0;
  std::vector<float> logits;
};

// A row with the CPU sampler's answer and the logits it left after its edits.
struct CheckedRow {
  RowCase row;
  SampledToken expected;
  std::vector<float> edited_logits;
};

float uniform_float(std::mt19937_64& rng, float lo, float hi) {
  return std::uniform_real_distribution<float>(lo, hi)(rng);
}

bool coin(std::mt19937_64& rng, double p = 0.5) { return std::bernoulli_distribution(p)(rng); }

int32_t random_token(std::mt19937_64& rng, int vocab_size) { return test::random_int(rng, 0, vocab_size - 1); }

// Logits on a 1/64 grid: distinct logits then give weights at least ~1% apart, and only exact
// ties (broken by id on both sides) share a weight. `num_hot` tokens get a boost, like the few
// likely tokens of a real model. The spread keeps every weight a normal float.
std::vector<float> grid_logits(std::mt19937_64& rng, int vocab_size, float scale, int num_hot) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> logits(vocab_size);
  for (float& l : logits) l = std::round(std::clamp(normal(rng), -10.0f, 10.0f) * 64.0f) / 64.0f;
  for (int i = 0; i < num_hot; ++i) {
    float& l = logits[random_token(rng, vocab_size)];
    l = std::round((l + uniform_float(rng, 2.0f, 8.0f)) * 64.0f) / 64.0f;
  }
  return logits;
}

int32_t argmax_id(const std::vector<float>& logits) {
  int32_t best = 0;
  float best_logit = kNegInf;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] > best_logit) {
      best_logit = logits[i];
      best = static_cast<int32_t>(i);
    }
  }
  return best;
}

// ---- the parameter mixes ---------------------------------------------------------------------

void base_row(std::mt19937_64& rng, int vocab_size, RowCase& row) {
  row.logits = grid_logits(rng, vocab_size, uniform_float(rng, 1.0f, 3.0f), test::random_int(rng, 0, 8));
  row.seed = rng();
  row.params.temperature = uniform_float(rng, 0.5f, 1.5f);
  row.params.max_tokens = 64;
  row.output_ids.assign(test::random_int(rng, 0, 5), 0);
  for (int32_t& id : row.output_ids) id = random_token(rng, vocab_size);
}

// A prompt and an output that repeat tokens, the current favourite among them.
void with_history(std::mt19937_64& rng, int vocab_size, RowCase& row) {
  std::vector<int32_t> pool(12);
  for (int32_t& id : pool) id = random_token(rng, vocab_size);
  pool[0] = argmax_id(row.logits);
  row.prompt_ids.assign(test::random_int(rng, 1, 300), 0);
  for (int32_t& id : row.prompt_ids)
    id = coin(rng, 0.2) ? pool[test::random_int(rng, 0, 11)] : random_token(rng, vocab_size);
  row.prompt_ids.push_back(vocab_size + 5);  // out of vocab: ignored by both samplers
  row.output_ids.assign(test::random_int(rng, 0, 40), 0);
  for (int32_t& id : row.output_ids) id = pool[test::random_int(rng, 0, 11)];
}

void mix_greedy(std::mt19937_64& rng, int vocab_size, RowCase& row) {
  base_row(rng, vocab_size, row);
  row.params.temperature = 0.0f;
  const int choices[] = {-1, 0, 3, 20};
  row.params.logprobs = choices[test::random_int(rng, 0, 3)];
}

void mix_temperature(std::mt19937_64& rng, int vocab_size, RowCase& row) { base_row(rng, vocab_size, row); }

void mix_top_k_small(std::mt19937_64& rng, int vocab_size, RowCase& row) {
  base_row(rng, vocab_size, row);
  row.params.top_k = test::random_int(rng, 1, 64);
}

// Around the 2048 candidates the kernel sorts in shared memory, and far beyond.
void mix_top_k_large(std::mt19937_64& rng, int vocab_size, RowCase& row) {
  base_row(rng, vocab_size, row);
  const int choices[] = {2048, 2049, test::random_int(rng, 2050, 20000)};
  row.params.top_k = choices[test::random_int(rng, 0, 2)];
}

void mix_top_p(std::mt19937_64& rng, int vocab_size, RowCase& row) {
  base_row(rng, vocab_size, row);
  row.params.top_p = uniform_float(rng, 0.3f, 0.97f);
}

void mix_min_p(std::mt19937_64& rng, int vocab_size, RowCase& row) {
  base_row(rng, vocab_size, row);
  row.params.min_p = uniform_float(rng, 0.01f, 0.3f);
}

void mix_combined(std::mt19937_64& rng, int vocab_size, RowCase& row) {
  base_row(rng, vocab_size, row);
  row.params.top_k = test::random_int(rng, 10, 300);
  row.params.top_p = uniform_float(rng, 0.5f, 0.95f);
  row.params.min_p = coin(rng) ? 0.0f : uniform_float(rng, 0.001f, 0.1f);
  row.params.logprobs = 20;
}

// Every filter on the whole-row path: top_k beyond the shared-memory candidates.
void mix_full_row_filters(std::mt19937_64& rng, int vocab_size, RowCase& row) {
  base_row(rng, vocab_size, row);
  row.params.top_k = test::random_int(rng, 3000, 20000);
  row.params.top_p = uniform_float(rng, 0.5f, 0.99f);
  row.params.min_p = coin(rng) ? 0.0f : uniform_float(rng, 0.0001f, 0.05f);
  row.params.logprobs = 5;
}

void mix_penalties(std::mt19937_64& rng, int vocab_size, RowCase& row) {
  base_row(rng, vocab_size, row);
  with_history(rng, vocab_size, row);
  const int kind = test::random_int(rng, 0, 2);  // repetition only, frequency/presence only, both
  if (kind != 1)
    row.params.repetition_penalty = coin(rng) ? uniform_float(rng, 0.7f, 0.95f) : uniform_float(rng, 1.05f, 1.6f);
  if (kind != 0) {
    row.params.frequency_penalty = uniform_float(rng, -1.0f, 1.0f);
    row.params.presence_penalty = coin(rng) ? 0.0f : uniform_float(rng, -1.0f, 1.0f);
  }
  if (coin(rng, 0.25)) row.params.temperature = 0.0f;
  if (coin(rng)) row.params.top_p = 0.9f;
  if (coin(rng, 0.3)) row.params.min_p = uniform_float(rng, 0.02f, 0.2f);  // weights relative to the edited max
  row.params.logprobs = 3;
}

void mix_logit_bias(std::mt19937_64& rng, int vocab_size, RowCase& row) {
  base_row(rng, vocab_size, row);
  row.params.temperature = uniform_float(rng, 0.5f, 1.0f);
  std::vector<int32_t> targets = {argmax_id(row.logits), random_token(rng, vocab_size), random_token(rng, vocab_size)};
  const int num_entries = test::random_int(rng, 1, 10);
  for (int i = 0; i < num_entries; ++i) {  // repeats of a token add up in order
    row.params.logit_bias.emplace_back(targets[test::random_int(rng, 0, 2)], uniform_float(rng, -20.0f, 20.0f));
  }
  if (coin(rng, 0.3)) row.params.logit_bias.emplace_back(random_token(rng, vocab_size), 100.0f);
  if (coin(rng, 0.3)) row.params.logit_bias.emplace_back(argmax_id(row.logits), -100.0f);
  if (coin(rng, 0.2)) row.params.temperature = 0.0f;
  if (coin(rng, 0.3)) row.params.min_p = uniform_float(rng, 0.02f, 0.2f);
  row.params.logprobs = 2;
}

// EOS and stop ids are the likeliest tokens; masked while output_ids.size() < min_tokens.
void mix_min_tokens(std::mt19937_64& rng, int vocab_size, RowCase& row) {
  base_row(rng, vocab_size, row);
  const int32_t eos = argmax_id(row.logits);
  row.logits[eos] += 12.0f;
  const int32_t stop = random_token(rng, vocab_size);
  row.logits[stop] += 10.0f;
  row.eos_ids = {eos, random_token(rng, vocab_size)};
  row.params.stop_token_ids = {stop, random_token(rng, vocab_size)};
  row.params.min_tokens = static_cast<int>(row.output_ids.size()) + test::random_int(rng, 0, 2);
  if (coin(rng)) row.params.temperature = 0.0f;
  row.params.logprobs = 1;
}

// Large tie groups: every logit equal, or two levels, so the kernel resolves ties by id.
void mix_ties(std::mt19937_64& rng, int vocab_size, RowCase& row) {
  base_row(rng, vocab_size, row);
  const bool two_levels = coin(rng);
  for (float& l : row.logits) l = two_levels && coin(rng, 0.3) ? 1.0f : 0.0f;
  const int top_ks[] = {0, 50, 3000};
  row.params.top_k = top_ks[test::random_int(rng, 0, 2)];
  if (coin(rng)) row.params.top_p = uniform_float(rng, 0.3f, 0.9f);
  row.params.logprobs = 5;
}

void mix_logprobs(std::mt19937_64& rng, int vocab_size, RowCase& row) {
  base_row(rng, vocab_size, row);
  const int choices[] = {0, 1, 20};
  row.params.logprobs = choices[test::random_int(rng, 0, 2)];
  if (coin(rng)) row.params.top_k = test::random_int(rng, 1, 100);
  if (coin(rng)) row.params.top_p = uniform_float(rng, 0.5f, 0.95f);
}

// -inf (masked) and NaN logits; now and then a row with nothing above -inf.
void mix_masked(std::mt19937_64& rng, int vocab_size, RowCase& row) {
  base_row(rng, vocab_size, row);
  const bool all_masked = coin(rng, 0.1);
  for (float& l : row.logits) {
    if (all_masked || coin(rng, 0.3)) l = kNegInf;
  }
  if (!all_masked) {
    for (int i = 0; i < 3; ++i) row.logits[random_token(rng, vocab_size)] = std::numeric_limits<float>::quiet_NaN();
  }
  if (coin(rng, 0.3)) row.params.temperature = 0.0f;
  if (coin(rng)) row.params.top_k = test::random_int(rng, 1, 40);
  row.params.logprobs = 4;
}

struct Mix {
  const char* name;
  void (*make)(std::mt19937_64& rng, int vocab_size, RowCase& row);
};

const Mix kMixes[] = {
    {"Greedy", mix_greedy},
    {"Temperature", mix_temperature},
    {"TopKSmall", mix_top_k_small},
    {"TopKLarge", mix_top_k_large},
    {"TopP", mix_top_p},
    {"MinP", mix_min_p},
    {"Combined", mix_combined},
    {"FullRowFilters", mix_full_row_filters},
    {"Penalties", mix_penalties},
    {"LogitBias", mix_logit_bias},
    {"MinTokens", mix_min_tokens},
    {"Ties", mix_ties},
    {"Logprobs", mix_logprobs},
    {"Masked", mix_masked},
};
constexpr size_t kNumMixes = sizeof(kMixes) / sizeof(kMixes[0]);

// ---- the CPU's decisions and their distance from a boundary ----------------------------------

struct Replay {
  bool clear = true;  // no decision within kBoundaryMargin of its boundary
  int32_t token_id = -1;
};

// Re-walks sample_filtered on the CPU-edited row, with the CPU's own float weights, sorting
// everything, and checks how close each decision came to going the other way.
Replay replay_filtered(const std::vector<float>& logits, const SamplingParams& params, double uniform) {
  Replay replay;
  float max_logit = kNegInf;
  for (const float l : logits) {
    if (l > max_logit) max_logit = l;
  }
  if (!std::isfinite(max_logit)) {
    replay.token_id = argmax_id(logits);
    return replay;
  }
  struct Candidate {
    float logit;
    float weight;
    int32_t id;
  };
  std::vector<Candidate> candidates;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] > kNegInf) candidates.push_back({logits[i], 0.0f, static_cast<int32_t>(i)});
  }
  const auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  const size_t top_k = params.top_k > 0 ? std::min<size_t>(params.top_k, candidates.size()) : candidates.size();
  std::nth_element(candidates.begin(), candidates.begin() + static_cast<ptrdiff_t>(top_k - 1), candidates.end(),
                   by_logit);
  candidates.resize(top_k);
  for (Candidate& c : candidates) {
    const float scaled = (c.logit - max_logit) / params.temperature;
    c.weight = std::exp(scaled);
    // Where the float result is subnormal or near it, the two exps may round apart.
    if (scaled > -105.0f && scaled < -86.0f) replay.clear = false;
  }
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return a.weight > b.weight || (a.weight == b.weight && a.id < b.id);
  });
  double top_k_mass = 0.0;
  size_t num_kept = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Candidate& c = candidates[i];
    top_k_mass += c.weight;
    if (c.weight > 0 && c.weight >= params.min_p) num_kept = i + 1;
    if (params.min_p > 0 && std::abs(c.weight - params.min_p) <= kBoundaryMargin * params.min_p) replay.clear = false;
    if (i + 1 < candidates.size()) {  // two weights that 1-ulp errors could reorder
      const Candidate& next = candidates[i + 1];
      if (next.logit != c.logit && next.weight > 0 && c.weight - next.weight <= kBoundaryMargin * c.weight) {
        replay.clear = false;
      }
    }
  }
  if (num_kept == 0) {
    replay.token_id = argmax_id(logits);
    return replay;
  }
  std::vector<double> prefix(num_kept);
  double running = 0.0;
  for (size_t i = 0; i < num_kept; ++i) prefix[i] = running += candidates[i].weight;
  size_t cut = num_kept;
  if (params.top_p < 1.0f) {
    const double nucleus_mass = static_cast<double>(params.top_p) * top_k_mass;
    for (size_t i = 0; i < num_kept; ++i) {
      if (std::abs(prefix[i] - nucleus_mass) <= kBoundaryMargin * top_k_mass) replay.clear = false;
    }
    const auto it = std::lower_bound(prefix.begin(), prefix.end(), nucleus_mass);  // first >= target
    if (it != prefix.end()) cut = static_cast<size_t>(it - prefix.begin()) + 1;
  }
  const double kept_mass = prefix[cut - 1];
  const double target = uniform * kept_mass;
  for (size_t i = 0; i < cut; ++i) {
    if (std::abs(prefix[i] - target) <= kBoundaryMargin * kept_mass) replay.clear = false;
  }
  const auto it = std::upper_bound(prefix.begin(), prefix.begin() + static_cast<ptrdiff_t>(cut), target);  // first >
  const size_t index =
      it == prefix.begin() + static_cast<ptrdiff_t>(cut) ? cut - 1 : static_cast<size_t>(it - prefix.begin());
  replay.token_id = candidates[index].id;
  return replay;
}

SamplingContext context_of(const RowCase& row) {
  SamplingContext ctx;
  ctx.prompt_ids = row.prompt_ids;
  ctx.output_ids = row.output_ids;
  ctx.eos_ids = row.eos_ids;
  ctx.seed = row.seed;
  return ctx;
}

std::string describe(const RowCase& row) {
  const SamplingParams& p = row.params;
  std::ostringstream out;
  out << "temperature=" << p.temperature << " top_k=" << p.top_k << " top_p=" << p.top_p << " min_p=" << p.min_p
      << " repetition=" << p.repetition_penalty << " frequency=" << p.frequency_penalty
      << " presence=" << p.presence_penalty << " logit_bias=" << p.logit_bias.size() << " min_tokens=" << p.min_tokens
      << " outputs=" << row.output_ids.size() << " logprobs=" << p.logprobs << " seed=" << row.seed;
  return out.str();
}

// A row of `mix` whose CPU decisions are clear of rounding boundaries (see kBoundaryMargin).
CheckedRow make_checked_row(std::mt19937_64& rng, int vocab_size, const Mix& mix) {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    CheckedRow checked;
    mix.make(rng, vocab_size, checked.row);
    const RowCase& row = checked.row;
    const Status valid = validate_sampling_params(row.params, vocab_size);
    EXPECT_TRUE(valid.ok()) << valid.message();
    checked.edited_logits = row.logits;
    checked.expected = sample_token(checked.edited_logits, row.params, context_of(row));
    if (is_greedy(row.params)) return checked;
    const Replay replay =
        replay_filtered(checked.edited_logits, row.params, sampling_uniform(row.seed, row.output_ids.size()));
    if (!replay.clear) continue;
    EXPECT_EQ(replay.token_id, checked.expected.token_id)
        << "the test's replay disagrees with sample_token: " << describe(row);
    return checked;
  }
  ADD_FAILURE() << mix.name << ": no row clear of rounding boundaries in " << kMaxAttempts << " attempts";
  return {};
}

// ---- the GPU side ----------------------------------------------------------------------------

template <class T>
DeviceBuffer to_device(const std::vector<T>& host) {
  DeviceBuffer buffer(host.size() * sizeof(T));
  if (buffer.ok() && buffer.upload(host) != cudaSuccess) return DeviceBuffer(0);
  return buffer;
}

template <class T>
std::vector<T> from_device(const DeviceBuffer& buffer) {
  const std::vector<uint8_t> bytes = buffer.download();
  std::vector<T> host(bytes.size() / sizeof(T));
  if (!host.empty()) std::memcpy(host.data(), bytes.data(), host.size() * sizeof(T));
  return host;
}

// Equal (infinities included), both NaN, or within `tolerance`.
bool same_or_close(float actual, float expected, float tolerance) {
  if (std::isnan(actual) || std::isnan(expected)) return std::isnan(actual) && std::isnan(expected);
  return actual == expected || std::abs(actual - expected) <= tolerance;
}

// The batch as sample_tokens takes it: what the engine would pack from params and contexts.
struct PackedBatch {
  std::vector<float> logits;
  std::vector<cuda::SamplingRow> rows;
  std::vector<cuda::SamplingLogitBias> logit_bias;
  std::vector<int32_t> stop_token_ids;
  std::vector<cuda::SamplingPenaltyToken> penalty_tokens;
  int max_num_logprobs = 0;
};

PackedBatch pack(const std::vector<CheckedRow>& checked, int vocab_size) {
  PackedBatch batch;
  for (const CheckedRow& c : checked) {
    const RowCase& row = c.row;
    const SamplingParams& p = row.params;
    batch.logits.insert(batch.logits.end(), row.logits.begin(), row.logits.end());
    cuda::SamplingRow packed;
    packed.temperature = p.temperature;
    packed.top_p = p.top_p;
    packed.min_p = p.min_p;
    packed.repetition_penalty = p.repetition_penalty;
    packed.frequency_penalty = p.frequency_penalty;
    packed.presence_penalty = p.presence_penalty;
    packed.top_k = p.top_k;
    packed.greedy = is_greedy(p) ? 1 : 0;
    packed.mask_stop_tokens = row.output_ids.size() < static_cast<size_t>(std::max(p.min_tokens, 0)) ? 1 : 0;
    packed.num_logprobs = p.logprobs;
    packed.logit_bias_begin = static_cast<int32_t>(batch.logit_bias.size());
    for (const auto& [token_id, bias] : p.logit_bias) batch.logit_bias.push_back({token_id, bias});
    packed.logit_bias_end = static_cast<int32_t>(batch.logit_bias.size());
    // Packed whether or not they apply: the kernel must ignore them when they do not.
    packed.stop_begin = static_cast<int32_t>(batch.stop_token_ids.size());
    batch.stop_token_ids.insert(batch.stop_token_ids.end(), row.eos_ids.begin(), row.eos_ids.end());
    batch.stop_token_ids.insert(batch.stop_token_ids.end(), p.stop_token_ids.begin(), p.stop_token_ids.end());
    packed.stop_end = static_cast<int32_t>(batch.stop_token_ids.size());
    packed.penalty_begin = static_cast<int32_t>(batch.penalty_tokens.size());
    cuda::append_penalty_tokens(row.prompt_ids.data(), row.prompt_ids.size(), row.output_ids.data(),
                                row.output_ids.size(), vocab_size, &batch.penalty_tokens);
    packed.penalty_end = static_cast<int32_t>(batch.penalty_tokens.size());
    packed.uniform = sampling_uniform(row.seed, row.output_ids.size());
    batch.rows.push_back(packed);
    batch.max_num_logprobs = std::max(batch.max_num_logprobs, p.logprobs);
  }
  return batch;
}

class SamplingCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    STRATA_REQUIRE_CUDA_DEVICE();
    STRATA_ASSERT_CUDA(cudaStreamCreate(&stream_));
  }
  void TearDown() override {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  // Samples `checked` on the GPU and compares with the CPU sampler's results.
  void expect_matches_cpu(const std::vector<CheckedRow>& checked, int vocab_size) {
    const int num_rows = static_cast<int>(checked.size());
    const PackedBatch packed = pack(checked, vocab_size);
    DeviceBuffer d_logits = to_device(packed.logits);
    DeviceBuffer d_rows = to_device(packed.rows);
    DeviceBuffer d_logit_bias = to_device(packed.logit_bias);
    DeviceBuffer d_stop_token_ids = to_device(packed.stop_token_ids);
    DeviceBuffer d_penalty_tokens = to_device(packed.penalty_tokens);
    const int top_stride = packed.max_num_logprobs;
    DeviceBuffer d_token_ids(num_rows * sizeof(int32_t));
    DeviceBuffer d_logprobs(num_rows * sizeof(float));
    DeviceBuffer d_top_ids(static_cast<size_t>(num_rows) * top_stride * sizeof(int32_t));
    DeviceBuffer d_top_logprobs(static_cast<size_t>(num_rows) * top_stride * sizeof(float));
    ASSERT_TRUE(d_logits.ok() && d_rows.ok() && d_logit_bias.ok() && d_stop_token_ids.ok() && d_penalty_tokens.ok() &&
                d_token_ids.ok() && d_logprobs.ok() && d_top_ids.ok() && d_top_logprobs.ok());

    cuda::SamplingBatch batch;
    batch.logits = d_logits.as<float>();
    batch.num_rows = num_rows;
    batch.vocab_size = vocab_size;
    batch.rows = d_rows.as<cuda::SamplingRow>();
    batch.logit_bias = d_logit_bias.as<cuda::SamplingLogitBias>();
    batch.num_logit_bias = static_cast<int64_t>(packed.logit_bias.size());
    batch.stop_token_ids = d_stop_token_ids.as<int32_t>();
    batch.num_stop_token_ids = static_cast<int64_t>(packed.stop_token_ids.size());
    batch.penalty_tokens = d_penalty_tokens.as<cuda::SamplingPenaltyToken>();
    batch.num_penalty_tokens = static_cast<int64_t>(packed.penalty_tokens.size());
    batch.max_num_logprobs = top_stride;
    cuda::SamplingOutputs outputs;
    outputs.token_ids = d_token_ids.as<int32_t>();
    outputs.logprobs = d_logprobs.as<float>();
    outputs.top_token_ids = top_stride > 0 ? d_top_ids.as<int32_t>() : nullptr;
    outputs.top_logprobs = top_stride > 0 ? d_top_logprobs.as<float>() : nullptr;
    const size_t workspace_bytes = cuda::sampling_workspace_bytes(batch);
    DeviceBuffer d_workspace(workspace_bytes);
    ASSERT_TRUE(d_workspace.ok());
    for (DeviceBuffer* out : {&d_token_ids, &d_logprobs, &d_top_ids, &d_top_logprobs, &d_workspace}) {
      STRATA_ASSERT_CUDA(out->poison());
    }

    STRATA_ASSERT_LAUNCH(cuda::sample_tokens(batch, outputs, d_workspace.get(), workspace_bytes, stream_));
    STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));

    const auto token_ids = from_device<int32_t>(d_token_ids);
    const auto logprobs = from_device<float>(d_logprobs);
    const auto top_ids = from_device<int32_t>(d_top_ids);
    const auto top_logprobs = from_device<float>(d_top_logprobs);
    const auto edited = from_device<float>(d_logits);
    for (int r = 0; r < num_rows; ++r) {
      const CheckedRow& c = checked[r];
      SCOPED_TRACE("row " + std::to_string(r) + " of " + std::to_string(num_rows) + ", vocab " +
                   std::to_string(vocab_size) + ": " + describe(c.row));
      EXPECT_EQ(token_ids[r], c.expected.token_id);
      if (c.row.params.logprobs >= 0) {
        EXPECT_TRUE(same_or_close(logprobs[r], c.expected.logprob, kLogprobTolerance))
            << "sampled logprob " << logprobs[r] << " vs CPU " << c.expected.logprob;
      } else {
        EXPECT_EQ(logprobs[r], 0.0f);
      }
      for (int i = 0; i < top_stride; ++i) {
        const size_t slot = static_cast<size_t>(r) * top_stride + i;
        if (static_cast<size_t>(i) < c.expected.top.size()) {
          EXPECT_EQ(top_ids[slot], c.expected.top[i].token_id) << "top " << i;
          EXPECT_TRUE(same_or_close(top_logprobs[slot], c.expected.top[i].logprob, kLogprobTolerance))
              << "top " << i << ": " << top_logprobs[slot] << " vs CPU " << c.expected.top[i].logprob;
        } else {
          EXPECT_EQ(top_ids[slot], -1) << "top " << i << " past the " << c.expected.top.size() << " expected";
        }
      }
      // Bias, masks and penalties are the same IEEE operations on both sides: bitwise equal rows.
      int mismatches = 0;
      for (int t = 0; t < vocab_size && mismatches < 5; ++t) {
        const float gpu = edited[static_cast<size_t>(r) * vocab_size + t];
        const float cpu = c.edited_logits[t];
        if (!same_or_close(gpu, cpu, 0.0f)) {
          ADD_FAILURE() << "edited logit of token " << t << ": " << gpu << " vs CPU " << cpu;
          ++mismatches;
        }
      }
    }
  }

  cudaStream_t stream_ = nullptr;
};

class SamplingCudaMix : public SamplingCuda, public ::testing::WithParamInterface<size_t> {};

// Each mix on its own at the vocabularies of small, Llama 2 and Llama 3 models (plus GPT-2's
// odd 50257, which takes the scalar-load path).
TEST_P(SamplingCudaMix, MatchesCpuSampler) {
  const Mix& mix = kMixes[GetParam()];
  STRATA_SEEDED_RNG(rng);
  for (auto [num_rows, vocab_size] : {std::pair{7, 1000}, {7, 32000}, {7, 128256}, {1, 50257}}) {
    SCOPED_TRACE(std::string(mix.name) + " " + std::to_string(num_rows) + "x" + std::to_string(vocab_size));
    std::vector<CheckedRow> rows;
    for (int r = 0; r < num_rows; ++r) {
      rows.push_back(make_checked_row(rng, vocab_size, mix));
      ASSERT_FALSE(rows.back().row.logits.empty());
    }
    expect_matches_cpu(rows, vocab_size);
  }
}

INSTANTIATE_TEST_SUITE_P(Mixes, SamplingCudaMix, ::testing::Range<size_t>(0, kNumMixes),
                         [](const ::testing::TestParamInfo<size_t>& info) { return kMixes[info.param].name; });

// Rows of every mix side by side, at batch 1, 7 and 64: a row's token does not depend on its
// neighbours.
TEST_F(SamplingCuda, MixedBatchMatchesCpuSampler) {
  STRATA_SEEDED_RNG(rng);
  for (int vocab_size : {1000, 32000, 128256}) {
    for (int num_rows : {1, 7, 64}) {
      SCOPED_TRACE(std::to_string(num_rows) + "x" + std::to_string(vocab_size));
      std::vector<CheckedRow> rows;
      for (int r = 0; r < num_rows; ++r) {
        rows.push_back(
            make_checked_row(rng, vocab_size, kMixes[test::random_int(rng, 0, static_cast<int>(kNumMixes) - 1)]));
        ASSERT_FALSE(rows.back().row.logits.empty());
      }
      expect_matches_cpu(rows, vocab_size);
    }
  }
}

// Without a device: the launcher's own checks and the host packing helper.

cuda::SamplingBatch valid_batch_shape() {
  cuda::SamplingBatch batch;
  batch.num_rows = 2;
  batch.vocab_size = 1000;
  batch.max_num_logprobs = 5;
  return batch;
}

TEST(SamplingCudaLauncher, RejectsBadShapesBeforeLaunching) {
  float* fake = reinterpret_cast<float*>(uintptr_t{256});  // never dereferenced: checks fail first
  cuda::SamplingOutputs outputs;
  outputs.token_ids = reinterpret_cast<int32_t*>(fake);
  outputs.top_token_ids = reinterpret_cast<int32_t*>(fake);
  outputs.top_logprobs = fake;
  const auto rejects = [&](cuda::SamplingBatch batch, const char* why) {
    if (batch.logits == nullptr) batch.logits = fake;
    if (batch.rows == nullptr) batch.rows = reinterpret_cast<const cuda::SamplingRow*>(fake);
    const cuda::LaunchStatus status = cuda::sample_tokens(batch, outputs, nullptr, 0, nullptr);
    EXPECT_FALSE(status.ok()) << why;
    EXPECT_NE(status.message.find("sample_tokens_kernel"), std::string::npos) << status.message;
  };
  cuda::SamplingBatch batch = valid_batch_shape();
  batch.vocab_size = 0;
  rejects(batch, "vocab_size 0");
  batch = valid_batch_shape();
  batch.vocab_size = (1 << 21) + 1;
  rejects(batch, "vocab_size above 2^21");
  batch = valid_batch_shape();
  batch.max_num_logprobs = 21;
  rejects(batch, "max_num_logprobs 21");
  batch = valid_batch_shape();
  batch.num_rows = -1;
  rejects(batch, "num_rows -1");
  batch = valid_batch_shape();
  batch.num_logit_bias = 3;  // null list
  rejects(batch, "null logit_bias");
  batch = valid_batch_shape();
  batch.num_penalty_tokens = 3;
  batch.penalty_tokens = reinterpret_cast<const cuda::SamplingPenaltyToken*>(fake);
  rejects(batch, "no workspace");  // 12 bytes needed, none given
}

TEST(SamplingCudaLauncher, EmptyBatchIsANoOp) {
  cuda::SamplingBatch batch = valid_batch_shape();
  batch.num_rows = 0;
  const cuda::LaunchStatus status = cuda::sample_tokens(batch, cuda::SamplingOutputs{}, nullptr, 0, nullptr);
  EXPECT_TRUE(status.ok()) << status.message;
}

TEST(SamplingCudaLauncher, WorkspaceHoldsOneFloatPerListEntry) {
  cuda::SamplingBatch batch = valid_batch_shape();
  EXPECT_EQ(cuda::sampling_workspace_bytes(batch), 0u);
  batch.num_logit_bias = 3;
  batch.num_stop_token_ids = 4;
  batch.num_penalty_tokens = 5;
  EXPECT_EQ(cuda::sampling_workspace_bytes(batch), 12 * sizeof(float));
}

TEST(SamplingCudaPenaltyTokens, ListsEachDistinctInVocabTokenOnceWithItsOutputCount) {
  const std::vector<int32_t> prompt = {5, 3, 5, -1, 9, 1000};
  const std::vector<int32_t> output = {3, 7, 3, 3, 1000};
  std::vector<cuda::SamplingPenaltyToken> tokens = {{42, 1}};  // appended after what is there
  cuda::append_penalty_tokens(prompt.data(), prompt.size(), output.data(), output.size(), /*vocab_size=*/1000, &tokens);
  ASSERT_EQ(tokens.size(), 5u);
  const std::vector<std::pair<int32_t, int32_t>> expected = {{42, 1}, {3, 3}, {5, 0}, {7, 1}, {9, 0}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(tokens[i].token_id, expected[i].first) << i;
    EXPECT_EQ(tokens[i].output_count, expected[i].second) << i;
  }
}

}  // namespace
}  // namespace strata
