// ModelRunner implementation.
#include "engine/runner/model_runner.h"

namespace strata {

ModelRunner::ModelRunner(std::unique_ptr<ModelExecutor> executor) : executor_(std::move(executor)) {}

Result<std::span<SampledToken>> ModelRunner::execute(const StepPlan& plan, const KvCacheManager& kv,
                                                     std::span<const int32_t> eos_ids) {
  ForwardBatch& b = batch_;
  b.token_ids.clear();
  b.positions.clear();
  b.query_start.assign(1, 0);
  b.context_lens.clear();
  b.block_tables.resize(plan.chunks.size());
  b.logits_indices.clear();
  sampling_.clear();
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
    if (!c.samples) continue;
    b.logits_indices.push_back(static_cast<int32_t>(b.token_ids.size()) - 1);
    const std::span<const int32_t> eos = r.params.ignore_eos ? std::span<const int32_t>() : eos_ids;
    sampling_.push_back({&r.params, SamplingContext{r.prompt_ids(), r.output_ids(), eos, r.seed}});
  }
  sampled_.resize(sampling_.size());
  STRATA_RETURN_IF_ERROR(executor_->forward_and_sample(b, sampling_, sampled_));
  return std::span<SampledToken>(sampled_);
}

}  // namespace strata
