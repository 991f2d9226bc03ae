// SamplingParams: how one request turns logits into tokens (OpenAI / vLLM semantics).
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace strata {

struct SamplingParams {
  float temperature = 1.0f;  // 0 means greedy
  float top_p = 1.0f;        // (0, 1]
  int top_k = 0;             // 0 or -1: disabled
  float min_p = 0.0f;        // [0, 1]
  float repetition_penalty = 1.0f;  // > 0; applies to prompt and output tokens (as in vLLM)
  float presence_penalty = 0.0f;    // [-2, 2]; output tokens only (as in OpenAI)
  float frequency_penalty = 0.0f;   // [-2, 2]; output tokens only
  std::vector<std::pair<int32_t, float>> logit_bias;  // token id -> bias added to its logit
  std::optional<uint64_t> seed;  // same seed, same output, whatever else shares the batch
  int max_tokens = 16;
  int min_tokens = 0;  // stop tokens are masked until this many tokens were generated
  std::vector<int32_t> stop_token_ids;  // in addition to the model's EOS ids
  bool ignore_eos = false;
  int logprobs = -1;  // -1: none; k >= 0: the sampled token's logprob plus the top k
};

// Temperatures below this sample greedily (vLLM's _SAMPLING_EPS).
inline constexpr float kGreedyTemperatureEpsilon = 1e-5f;

// True when the request takes the argmax and draws no random number.
inline bool is_greedy(const SamplingParams& params) {
  return params.temperature < kGreedyTemperatureEpsilon;
}

}  // namespace strata
