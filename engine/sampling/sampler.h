// Sampler: one request's logits row -> next token (+ logprobs), deterministic per (seed, step).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/core/status.h"
#include "engine/sampling/sampling_params.h"

namespace strata {

struct TokenLogprob {
  int32_t token_id = 0;
  float logprob = 0.0f;
};

struct SampledToken {
  int32_t token_id = 0;
  float logprob = 0.0f;              // of the sampled token, filled when params.logprobs >= 0
  std::vector<TokenLogprob> top;     // top `params.logprobs` alternatives, best first
};

// Context the penalties need: the prompt and the tokens generated so far.
struct SamplingContext {
  std::span<const int32_t> prompt_ids;
  std::span<const int32_t> output_ids;
  std::span<const int32_t> eos_ids;  // masked while output_ids.size() < min_tokens (unless ignore_eos)
  uint64_t seed = 0;  // the request's seed (params.seed or one drawn at admission)
};

// Checks ranges and returns invalid_argument naming the field ("top_p must be in (0, 1]").
Status validate_sampling_params(const SamplingParams& params, int32_t vocab_size);

// Samples from `logits` ([vocab_size], modified in place). The random draw depends only on
// (ctx.seed, ctx.output_ids.size()), so a request's output does not depend on its batch.
// Logprobs are those of the model's raw distribution (log_softmax of the logits before any
// penalty, bias or temperature), as vLLM reports them.
SampledToken sample_token(std::span<float> logits, const SamplingParams& params,
                          const SamplingContext& ctx);

}  // namespace strata
