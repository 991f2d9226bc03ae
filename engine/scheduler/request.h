// Request: one sequence's state inside the engine (tokens so far, progress, sampling).
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include "engine/sampling/sampling_params.h"

namespace strata {

enum class RequestStatus { kWaiting, kRunning, kFinished };
enum class FinishReason { kNone, kStop, kLength, kAbort, kError };

const char* finish_reason_name(FinishReason reason);

struct Request {
  uint64_t id = 0;
  std::vector<int32_t> tokens;  // prompt followed by the generated tokens
  int num_prompt_tokens = 0;
  SamplingParams params;
  uint64_t seed = 0;
  int max_total_tokens = 0;  // prompt + max_tokens, capped by the context window

  RequestStatus status = RequestStatus::kWaiting;
  FinishReason finish_reason = FinishReason::kNone;
  int num_computed_tokens = 0;    // tokens whose KV is in the cache
  int num_cached_tokens = -1;     // prefix-cache hit at first admission (-1: not admitted yet)
  int num_preemptions = 0;
  uint64_t admission_order = 0;   // larger = admitted later (preemption victims first)
  std::chrono::steady_clock::time_point arrival_time = std::chrono::steady_clock::now();

  int num_tokens() const { return static_cast<int>(tokens.size()); }
  int num_output_tokens() const { return num_tokens() - num_prompt_tokens; }
  std::span<const int32_t> prompt_ids() const { return {tokens.data(), static_cast<size_t>(num_prompt_tokens)}; }
  std::span<const int32_t> output_ids() const {
    return {tokens.data() + num_prompt_tokens, static_cast<size_t>(num_output_tokens())};
  }
  int num_uncomputed_tokens() const { return num_tokens() - num_computed_tokens; }
};

}  // namespace strata
