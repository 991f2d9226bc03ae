// The CPU reference backend as a ModelExecutor: LlamaModel over an fp32 KvCacheStorage.
#include <string>
#include <vector>

#include "engine/model/kv_cache_storage.h"
#include "engine/model/model_executor.h"

namespace strata {
namespace {

class CpuExecutor final : public ModelExecutor {
 public:
  CpuExecutor(std::unique_ptr<LlamaModel> model, int num_kv_blocks, int block_size)
      : model_(std::move(model)),
        kv_(model_->config().num_layers, num_kv_blocks, block_size, model_->config().num_kv_heads,
            model_->config().head_dim) {}

  const ModelConfig& config() const override { return model_->config(); }
  std::string device_name() const override { return "cpu"; }
  size_t weight_bytes() const override { return model_->weight_bytes(); }
  size_t kv_cache_bytes() const override {
    return 2ull * kv_.num_layers() * kv_.num_blocks() * kv_.block_size() * kv_.num_kv_heads() * kv_.head_dim() *
           sizeof(float);
  }
  int num_kv_blocks() const override { return kv_.num_blocks(); }
  int block_size() const override { return kv_.block_size(); }

  Status forward(const ForwardBatch& batch, std::span<float> logits) override {
    return model_->forward(batch, kv_, logits);
  }

  Status forward_and_sample(const ForwardBatch& batch, std::span<const SamplingRequest> rows,
                            std::span<SampledToken> tokens) override {
    if (rows.size() != batch.logits_indices.size() || tokens.size() != rows.size()) {
      return invalid_argument("forward_and_sample: " + std::to_string(rows.size()) + " sampling rows and " +
                              std::to_string(tokens.size()) + " outputs for " +
                              std::to_string(batch.logits_indices.size()) + " logits rows");
    }
    const int vocab = config().vocab_size;
    logits_.resize(batch.logits_indices.size() * static_cast<size_t>(vocab));
    STRATA_RETURN_IF_ERROR(model_->forward(batch, kv_, logits_));
    sample_rows_on_host(logits_, vocab, rows, tokens, sampler_workspace_);
    return Status::ok_status();
  }

 private:
  std::unique_ptr<LlamaModel> model_;
  KvCacheStorage kv_;
  std::vector<float> logits_;
  SamplerWorkspace sampler_workspace_;
};

}  // namespace

void sample_rows_on_host(std::span<float> logits, int vocab_size, std::span<const SamplingRequest> rows,
                         std::span<SampledToken> tokens, SamplerWorkspace& workspace) {
  const size_t vocab = static_cast<size_t>(vocab_size);
  for (size_t i = 0; i < rows.size(); ++i) {
    tokens[i] = sample_token(logits.subspan(i * vocab, vocab), *rows[i].params, rows[i].context, workspace);
  }
}

std::unique_ptr<ModelExecutor> make_cpu_executor(std::unique_ptr<LlamaModel> model, int num_kv_blocks, int block_size) {
  return std::make_unique<CpuExecutor>(std::move(model), num_kv_blocks, block_size);
}

}  // namespace strata
