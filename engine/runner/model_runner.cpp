// ModelRunner implementation.
#include "engine/runner/model_runner.h"

namespace strata {

ModelRunner::ModelRunner(std::unique_ptr<ModelExecutor> executor) : executor_(std::move(executor)) {}

Result<std::span<float>> ModelRunner::execute(const StepPlan& plan, const KvCacheManager& kv) {
  ForwardBatch& b = batch_;
  b.token_ids.clear();
  b.positions.clear();
  b.query_start.assign(1, 0);
  b.context_lens.clear();
  b.block_tables.resize(plan.chunks.size());
  b.logits_indices.clear();
  for (size_t s = 0; s < plan.chunks.size(); ++s) {
    const ScheduledChunk& c = plan.chunks[s];
    const Request& r = *c.request;
    const int begin = r.num_computed_tokens;
    const int end = begin + c.num_new_tokens;
    for (int t = begin; t < end; ++t) {
      b.token_ids.push_back(r.tokens[t]);
      b.positions.push_back(t);
    }
    b.query_start.push_back(static_cast<int32_t>(b.token_ids.size()));
    b.context_lens.push_back(end);
    b.block_tables[s] = kv.block_table(r.id);
    if (c.samples) b.logits_indices.push_back(static_cast<int32_t>(b.token_ids.size()) - 1);
  }
  const size_t vocab = static_cast<size_t>(config().vocab_size);
  logits_.resize(b.logits_indices.size() * vocab);
  STRATA_RETURN_IF_ERROR(executor_->forward(b, logits_));
  return std::span<float>(logits_);
}

}  // namespace strata
