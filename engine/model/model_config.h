// ModelConfig: the validated shape of a decoder-only checkpoint, read from config.json.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/status.h"

namespace strata {

enum class ModelArch { kLlama, kMistral, kQwen2, kQwen3 };

struct RopeConfig {
  float theta = 10000.0f;
  std::string type = "default";  // "default" or "llama3"
  // llama3 scaling (Llama 3.1/3.2): frequencies below low_freq are divided by `factor`,
  // those above high_freq are kept, the band between is interpolated.
  float factor = 1.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string architecture;  // e.g. "LlamaForCausalLM"
  ModelArch arch = ModelArch::kLlama;
  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int max_position_embeddings = 0;
  float rms_norm_eps = 1e-6f;
  RopeConfig rope;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v projections carry a bias (Qwen2)
  bool qk_norm = false;         // per-head RMSNorm on q and k before RoPE (Qwen3)
  std::optional<int> sliding_window;
  std::string torch_dtype;  // as declared; weights are converted at load
  std::optional<int> bos_token_id;
  std::vector<int> eos_token_ids;
};

// Parses and validates config.json text; `source` names the file in error messages.
Result<ModelConfig> parse_model_config(std::string_view json_text, const std::string& source);
// Reads `<model_dir>/config.json`.
Result<ModelConfig> load_model_config(const std::string& model_dir);

// Defaults from generation_config.json (all optional; a missing file gives an empty struct).
struct GenerationDefaults {
  std::vector<int> eos_token_ids;
  std::optional<int> bos_token_id;
  std::optional<bool> do_sample;
  std::optional<float> temperature;
  std::optional<float> top_p;
  std::optional<int> top_k;
  std::optional<float> min_p;
  std::optional<float> repetition_penalty;
  std::optional<int> max_new_tokens;
};

Result<GenerationDefaults> load_generation_defaults(const std::string& model_dir);

}  // namespace strata
