// ModelRunner: turns a StepPlan into the flat ForwardBatch, runs the model over the paged
// KV cache, and returns the logits rows of the chunks that sample.
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

  // Runs one step. Returns logits [number of sampling chunks, vocab_size], in plan order.
  Result<std::span<float>> execute(const StepPlan& plan, const KvCacheManager& kv);

 private:
  std::unique_ptr<ModelExecutor> executor_;
  ForwardBatch batch_;
  std::vector<float> logits_;
};

}  // namespace strata
