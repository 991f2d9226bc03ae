// ModelExecutor: a model with its paged KV cache on one device, as ModelRunner drives it. The
// CPU reference (fp32, kernels/cpu) and the CUDA backend (bf16, kernels/cuda) implement it.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "engine/core/status.h"
#include "engine/model/forward_batch.h"
#include "engine/model/llama_model.h"
#include "engine/model/model_config.h"
#include "engine/sampling/sampler.h"

namespace strata {

// How one logits row becomes a token: its request's parameters and context, as sample_token
// takes them. `params` outlives the call.
struct SamplingRequest {
  const SamplingParams* params = nullptr;
  SamplingContext context;
};

class ModelExecutor {
 public:
  virtual ~ModelExecutor() = default;

  virtual const ModelConfig& config() const = 0;
  virtual std::string device_name() const = 0;  // "cpu", "cuda:0 (NVIDIA H100 80GB HBM3)"
  virtual size_t weight_bytes() const = 0;
  virtual size_t kv_cache_bytes() const = 0;
  virtual int num_kv_blocks() const = 0;
  virtual int block_size() const = 0;

  // Runs the batch, writes its new K/V into the executor's cache, and fills `logits` (host,
  // fp32, [batch.logits_indices.size(), vocab_size]).
  virtual Status forward(const ForwardBatch& batch, std::span<float> logits) = 0;

  // Runs the batch as forward() does, then samples logits row i as sample_token does with
  // rows[i] into tokens[i] (rows and tokens: one per batch.logits_indices entry). The CPU
  // backend samples on the host; the CUDA backend on the GPU, so that only token ids and the
  // requested logprobs cross to the host.
  virtual Status forward_and_sample(const ForwardBatch& batch, std::span<const SamplingRequest> rows,
                                    std::span<SampledToken> tokens) = 0;
};

// forward_and_sample for a backend with host logits: `logits` holds rows.size() rows of
// vocab_size, edited in place by the sampler.
void sample_rows_on_host(std::span<float> logits, int vocab_size, std::span<const SamplingRequest> rows,
                         std::span<SampledToken> tokens, SamplerWorkspace& workspace);

// The CPU reference backend: `model` over an fp32 KV cache of `num_kv_blocks` blocks.
std::unique_ptr<ModelExecutor> make_cpu_executor(std::unique_ptr<LlamaModel> model, int num_kv_blocks, int block_size);

}  // namespace strata
