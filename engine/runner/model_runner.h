// ModelRunner: turns a StepPlan into the flat ForwardBatch, runs the model over the paged
// KV cache, and samples the next token of every chunk that samples.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "engine/core/status.h"
#include "engine/model/forward_batch.h"
#include "engine/model/model_executor.h"
#include "engine/scheduler/scheduler.h"

namespace strata {

class ModelRunner {
 public:
  explicit ModelRunner(std::unique_ptr<ModelExecutor> executor);

  const ModelConfig& config() const { return executor_->config(); }
  const ModelExecutor& executor() const { return *executor_; }

  // Runs one step. Returns one token per sampling chunk, in plan order; `eos_ids` are masked
  // while a request is under its min_tokens (none for requests with ignore_eos).
  Result<std::span<SampledToken>> execute(const StepPlan& plan, const KvCacheManager& kv,
                                          std::span<const int32_t> eos_ids);

 private:
  std::unique_ptr<ModelExecutor> executor_;
  ForwardBatch batch_;
  std::vector<SamplingRequest> sampling_;
  std::vector<SampledToken> sampled_;
};

}  // namespace strata
