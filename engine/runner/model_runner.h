// ModelRunner: turns a StepPlan into the flat ForwardBatch, runs the model over the paged
// KV cache, and returns the logits rows of the chunks that sample.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "engine/core/status.h"
#include "engine/model/forward_batch.h"
#include "engine/model/kv_cache_storage.h"
#include "engine/model/llama_model.h"
#include "engine/scheduler/scheduler.h"

namespace strata {

class ModelRunner {
 public:
  ModelRunner(std::unique_ptr<LlamaModel> model, int num_kv_blocks, int block_size);

  const ModelConfig& config() const { return model_->config(); }
  const LlamaModel& model() const { return *model_; }
  size_t kv_cache_bytes() const;

  // Runs one step. Returns logits [number of sampling chunks, vocab_size], in plan order.
  Result<std::span<float>> execute(const StepPlan& plan, const KvCacheManager& kv);

 private:
  std::unique_ptr<LlamaModel> model_;
  KvCacheStorage kv_storage_;
  ForwardBatch batch_;
  std::vector<float> logits_;
};

}  // namespace strata
