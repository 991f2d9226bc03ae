// The CPU reference backend as a ModelExecutor: LlamaModel over an fp32 KvCacheStorage.
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

 private:
  std::unique_ptr<LlamaModel> model_;
  KvCacheStorage kv_;
};

}  // namespace

std::unique_ptr<ModelExecutor> make_cpu_executor(std::unique_ptr<LlamaModel> model, int num_kv_blocks, int block_size) {
  return std::make_unique<CpuExecutor>(std::move(model), num_kv_blocks, block_size);
}

}  // namespace strata
