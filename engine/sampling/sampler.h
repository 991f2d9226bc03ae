// Sampler: one request's logits row -> next token (+ logprobs), deterministic per (seed, step).
#pragma once

#include <cstdint>
#include <span>
#include <utility>
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
  // Masked, like params.stop_token_ids, while output_ids.size() < params.min_tokens. The
  // sampler does not read ignore_eos: the engine decides what ends a request.
  std::span<const int32_t> eos_ids;
  uint64_t seed = 0;  // the request's seed (params.seed or one drawn at admission)
};

// Scratch buffers sample_token reuses from call to call; keep one per engine thread so the
// step loop does not allocate. Contents are meaningless between calls.
struct SamplerWorkspace {
  struct Candidate {
    float weight = 0.0f;  // the logit while selecting top-k, then exp((logit - max) / temperature)
    int32_t token_id = 0;
  };
  std::vector<Candidate> candidates;
  std::vector<float> top_k_heap;
  std::vector<int32_t> token_counts;  // [vocab_size], all zero between calls
  std::vector<int32_t> counted_ids;
  std::vector<std::pair<int32_t, float>> raw_logit_edits;  // (token, logit before an edit)
};

// Checks ranges and returns invalid_argument naming the field ("top_p must be in (0, 1]").
Status validate_sampling_params(const SamplingParams& params, int32_t vocab_size);

// Samples from `logits` ([vocab_size], modified in place). The random draw depends only on
// (ctx.seed, ctx.output_ids.size()), so a request's output does not depend on its batch.
// Logprobs are those of the model's raw distribution (log_softmax of the logits before any
// penalty, bias or temperature), as vLLM reports them.
// Pipeline: logprobs -> logit_bias -> min_tokens mask (EOS and stop_token_ids) ->
// repetition_penalty -> frequency/presence penalties -> argmax when is_greedy(params), else
// temperature -> top_k -> top_p -> min_p -> inverse-CDF draw over the kept tokens in
// canonical order (descending probability, ties to the lower id).
SampledToken sample_token(std::span<float> logits, const SamplingParams& params,
                          const SamplingContext& ctx, SamplerWorkspace& workspace);

// As above with a workspace of its own (allocates; for tests and one-off calls).
SampledToken sample_token(std::span<float> logits, const SamplingParams& params,
                          const SamplingContext& ctx);

// The uniform draw in [0, 1) for step `step` (= tokens generated so far) of a request seeded
// `seed`: the SplitMix64 sequence seeded with `seed`, indexed by step. Exposed so a device
// sampler can reproduce the CPU sampler's choices.
double sampling_uniform(uint64_t seed, uint64_t step);

}  // namespace strata
