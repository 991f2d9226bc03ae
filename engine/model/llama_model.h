// LlamaModel: the Llama family (Llama 2/3, Mistral, Qwen2, Qwen3) on the CPU reference backend.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "engine/core/status.h"
#include "engine/model/forward_batch.h"
#include "engine/model/kv_cache_storage.h"
#include "engine/model/llama_weights.h"
#include "engine/model/load_format.h"
#include "engine/model/model_config.h"

namespace strata {

class LlamaModel {
 public:
  // Loads weights from the safetensors files in `model_dir` (f32/bf16/f16 -> f32), or, with
  // LoadFormat::kDummy, builds deterministic random weights from `config` alone (no file in
  // `model_dir` is read).
  static Result<std::unique_ptr<LlamaModel>> load(const std::string& model_dir, const ModelConfig& config,
                                                  const ModelLoadOptions& options = {});
  ~LlamaModel();

  const ModelConfig& config() const;
  size_t weight_bytes() const;

  // Runs the batch, writes its new K/V into `kv`, and fills `logits`
  // ([batch.logits_indices.size(), vocab_size], row-major).
  Status forward(const ForwardBatch& batch, KvCacheStorage& kv, std::span<float> logits);

 private:
  LlamaModel();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata
