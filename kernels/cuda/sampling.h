// Logits processing and sampling on the GPU (CUDA twin of engine/sampling/sampler.h): logit
// bias, min_tokens masking, penalties, greedy or temperature / top-k / top-p / min-p plus the
// inverse-CDF draw, and raw logprobs, for a batch of fp32 logits rows; one row per request.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cuda/common.h"

namespace strata::cuda {

// OpenAI's top_logprobs limit (kMaxLogprobs in sampler.cpp).
inline constexpr int kMaxSamplingLogprobs = 20;

// One request's sampling fields, packed by the host from its SamplingParams and context.
// Ranges index the batch-wide lists of SamplingBatch and must not overlap between rows (the
// workspace keeps one raw logit per list entry). The kernel skips ids outside the vocab (as
// sample_token does) but trusts the rest: validate with validate_sampling_params first.
struct SamplingRow {
  float temperature = 1.0f;
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  int32_t top_k = 0;             // <= 0: disabled
  int32_t greedy = 0;            // is_greedy(params): argmax, `uniform` unused
  int32_t mask_stop_tokens = 0;  // output_ids.size() < min_tokens: stop_token_ids[stop_*) get -inf
  int32_t num_logprobs = -1;     // params.logprobs: -1 none, else the top k (k <= max_num_logprobs)
  int32_t logit_bias_begin = 0;  // [begin, end) into SamplingBatch::logit_bias, in request order
  int32_t logit_bias_end = 0;
  int32_t stop_begin = 0;  // [begin, end) into SamplingBatch::stop_token_ids: EOS ids + params.stop_token_ids
  int32_t stop_end = 0;
  int32_t penalty_begin = 0;  // [begin, end) into SamplingBatch::penalty_tokens
  int32_t penalty_end = 0;
  double uniform = 0.0;  // sampling_uniform(seed, output_ids.size()), in [0, 1)
};

struct SamplingLogitBias {
  int32_t token_id = 0;
  float bias = 0.0f;
};

// One entry per distinct token of prompt + output (see append_penalty_tokens): every entry gets
// repetition_penalty, entries with output_count > 0 also frequency/presence penalties.
struct SamplingPenaltyToken {
  int32_t token_id = 0;
  int32_t output_count = 0;  // occurrences in the output so far
};

// Device pointers. Lists may be null when their count is 0.
struct SamplingBatch {
  float* logits = nullptr;  // [num_rows, vocab_size]; edited in place (bias, masks, penalties), as sample_token does
  int num_rows = 0;
  int vocab_size = 0;
  const SamplingRow* rows = nullptr;  // [num_rows]
  const SamplingLogitBias* logit_bias = nullptr;
  int64_t num_logit_bias = 0;
  const int32_t* stop_token_ids = nullptr;
  int64_t num_stop_token_ids = 0;
  const SamplingPenaltyToken* penalty_tokens = nullptr;
  int64_t num_penalty_tokens = 0;
  int max_num_logprobs = 0;  // row stride of the top_* outputs, in [0, kMaxSamplingLogprobs]
};

// Device pointers; only these cross back to the host.
struct SamplingOutputs {
  int32_t* token_ids = nullptr;  // [num_rows]
  // [num_rows]: the sampled token's raw logprob (log_softmax before bias, masks, penalties and
  // temperature); 0 where num_logprobs < 0. May be null when no row asks for logprobs.
  float* logprobs = nullptr;
  // [num_rows, max_num_logprobs]: the best min(num_logprobs, vocab_size) raw logprobs, best first
  // (ties to the lower id); entries past them hold id -1 and -inf. Null when max_num_logprobs is 0.
  int32_t* top_token_ids = nullptr;
  float* top_logprobs = nullptr;
};

// Device scratch sample_tokens needs (the raw logits of the tokens it edits); 0 for a batch
// without bias, stop or penalty entries, where the workspace may be null.
size_t sampling_workspace_bytes(const SamplingBatch& batch);

// Samples one token per row, with the same choices as strata::sample_token given the same
// logits and `uniform` (see sampling.cu for the algorithm and where rounding may differ).
LaunchStatus sample_tokens(const SamplingBatch& batch, const SamplingOutputs& outputs, void* workspace,
                           size_t workspace_bytes, cudaStream_t stream);

// Host helper: appends one SamplingPenaltyToken per distinct id of prompt_ids + output_ids in
// [0, vocab_size) (others are ignored, as sample_token does), in increasing id order.
void append_penalty_tokens(const int32_t* prompt_ids, size_t num_prompt_ids, const int32_t* output_ids,
                           size_t num_output_ids, int32_t vocab_size, std::vector<SamplingPenaltyToken>* out);

}  // namespace strata::cuda
