// The weights of a Llama-family model (Llama 2/3, Mistral, Qwen2, Qwen3) in the fused layout
// every backend uses, read from safetensors or made as dummy weights, one layer at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/core/status.h"
#include "engine/model/load_format.h"
#include "engine/model/model_config.h"

namespace strata {

// One decoder layer, fp32. q/k/v are fused into one [q_dim + 2 * kv_dim, hidden] matrix and
// gate/up into one [2 * intermediate, hidden] matrix, so each takes a single GEMM.
struct LlamaLayerWeights {
  std::vector<float> input_norm;    // [hidden]
  std::vector<float> qkv_proj;      // [q_dim + 2 * kv_dim, hidden]
  std::vector<float> qkv_bias;      // [q_dim + 2 * kv_dim] or empty
  std::vector<float> q_norm;        // [head_dim] or empty (Qwen3)
  std::vector<float> k_norm;        // [head_dim] or empty (Qwen3)
  std::vector<float> o_proj;        // [hidden, q_dim]
  std::vector<float> o_bias;        // [hidden] or empty
  std::vector<float> post_norm;     // [hidden]
  std::vector<float> gate_up_proj;  // [2 * intermediate, hidden]
  std::vector<float> down_proj;     // [hidden, intermediate]

  size_t num_floats() const;
};

// The tensors outside the layers, fp32.
struct LlamaOuterWeights {
  std::vector<float> embed_tokens;  // [vocab, hidden]
  std::vector<float> final_norm;    // [hidden]
  std::vector<float> lm_head;       // [vocab, hidden]; empty when tied to embed_tokens

  size_t num_floats() const;
};

// The fused weights a checkpoint tensor lands in.
enum class LlamaWeight {
  kEmbedTokens, kFinalNorm, kLmHead,  // outer
  kInputNorm, kPostNorm, kQkvProj, kQkvBias, kQNorm, kKNorm, kOProj, kOBias, kGateUpProj, kDownProj,  // per layer
};

// One checkpoint tensor: its name and shape as HF checkpoints store it, and where it goes: the
// layer (-1 for the outer weights), the fused weight, and the element offset inside it (q, k
// and v stack along rows into qkv_proj, gate and up into gate_up_proj).
struct LlamaTensor {
  std::string name;
  std::vector<int64_t> shape;
  int layer = -1;
  LlamaWeight weight = LlamaWeight::kEmbedTokens;
  size_t offset = 0;

  size_t numel() const;
};

// Every tensor of `config`'s model, in the order read_llama_weights reads them: embeddings,
// each layer in turn, the final norm, lm_head unless tied.
std::vector<LlamaTensor> llama_tensors(const ModelConfig& config);

// Reads every weight of `config`'s model: from the safetensors files of `model_dir`, or with
// LoadFormat::kDummy from nothing but `config`. Each layer goes to `on_layer` as soon as it is
// read, so a device backend holds one layer in host memory at a time. Errors name the tensor
// and the file. Large checkpoints log their progress.
Status read_llama_weights(const std::string& model_dir, const ModelConfig& config, const ModelLoadOptions& options,
                          const std::function<Status(int layer, LlamaLayerWeights&& weights)>& on_layer,
                          LlamaOuterWeights& outer);

// HF: Llama and Qwen3 give o_proj a bias whenever attention_bias is set; Qwen2 never does.
bool llama_has_o_proj_bias(const ModelConfig& config);

// The RoPE inverse-frequency table of a config (default or llama3-scaled): [head_dim / 2].
std::vector<float> llama_inv_freq(const ModelConfig& config);

// Parameters of a Llama-family model of this shape (embeddings, every layer, final norm, and
// lm_head unless tied).
int64_t llama_num_parameters(const ModelConfig& config);

// "1.50 GiB" / "12.00 MiB".
std::string format_bytes(uint64_t bytes);

}  // namespace strata
