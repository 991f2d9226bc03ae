// Llama-family weights in the fused layout: tensor names and shapes as HF checkpoints store
// them, read from safetensors (any f32/bf16/f16) or made by fill_dummy_tensor.
#include "engine/model/llama_weights.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <memory>

#include "engine/model/dummy_weights.h"
#include "engine/model/safetensors.h"
#include "kernels/cpu/rope.h"

namespace strata {
namespace {

size_t sum_sizes(std::initializer_list<const std::vector<float>*> parts) {
  size_t n = 0;
  for (const auto* p : parts) n += p->size();
  return n;
}

// Appends `part` to `fused` (row-major matrices stacked along rows; vectors concatenated).
void append(std::vector<float>& fused, const std::vector<float>& part) {
  fused.insert(fused.end(), part.begin(), part.end());
}

std::vector<float>& fused_weight(LlamaWeight weight, LlamaLayerWeights& layer, LlamaOuterWeights& outer) {
  switch (weight) {
    case LlamaWeight::kEmbedTokens: return outer.embed_tokens;
    case LlamaWeight::kFinalNorm: return outer.final_norm;
    case LlamaWeight::kLmHead: return outer.lm_head;
    case LlamaWeight::kInputNorm: return layer.input_norm;
    case LlamaWeight::kPostNorm: return layer.post_norm;
    case LlamaWeight::kQkvProj: return layer.qkv_proj;
    case LlamaWeight::kQkvBias: return layer.qkv_bias;
    case LlamaWeight::kQNorm: return layer.q_norm;
    case LlamaWeight::kKNorm: return layer.k_norm;
    case LlamaWeight::kOProj: return layer.o_proj;
    case LlamaWeight::kOBias: return layer.o_bias;
    case LlamaWeight::kGateUpProj: return layer.gate_up_proj;
    case LlamaWeight::kDownProj: return layer.down_proj;
  }
  return layer.down_proj;  // unreachable: every enumerator is handled above
}

// Produces one named tensor of the given shape as f32.
using ReadTensor =
    std::function<Status(const std::string& name, const std::vector<int64_t>& shape, std::vector<float>& out)>;

}  // namespace

size_t LlamaLayerWeights::num_floats() const {
  return sum_sizes(
      {&input_norm, &qkv_proj, &qkv_bias, &q_norm, &k_norm, &o_proj, &o_bias, &post_norm, &gate_up_proj, &down_proj});
}

size_t LlamaOuterWeights::num_floats() const { return sum_sizes({&embed_tokens, &final_norm, &lm_head}); }

bool llama_has_o_proj_bias(const ModelConfig& c) { return c.attention_bias && c.arch != ModelArch::kQwen2; }

std::vector<float> llama_inv_freq(const ModelConfig& config) {
  std::vector<float> inv_freq(config.head_dim / 2);
  cpu::rope_inv_freq(config.head_dim, config.rope.theta, inv_freq.data());
  if (config.rope.type == "llama3") {
    cpu::rope_llama3_scale(inv_freq.data(), static_cast<int>(inv_freq.size()), config.rope.factor,
                           config.rope.low_freq_factor, config.rope.high_freq_factor,
                           config.rope.original_max_position_embeddings);
  }
  return inv_freq;
}

int64_t llama_num_parameters(const ModelConfig& c) {
  const int64_t hidden = c.hidden_size, inter = c.intermediate_size, vocab = c.vocab_size;
  const int64_t q_dim = static_cast<int64_t>(c.num_heads) * c.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(c.num_kv_heads) * c.head_dim;
  int64_t layer = 2 * hidden;              // input and post-attention norms
  layer += (q_dim + 2 * kv_dim) * hidden;  // q, k, v
  layer += hidden * q_dim;                 // o
  layer += 3 * inter * hidden;             // gate, up, down
  if (c.attention_bias) layer += q_dim + 2 * kv_dim;
  if (c.qk_norm) layer += 2 * c.head_dim;
  if (llama_has_o_proj_bias(c)) layer += hidden;
  const int64_t embeddings = vocab * hidden * (c.tie_word_embeddings ? 1 : 2);
  return embeddings + c.num_layers * layer + hidden;
}

size_t LlamaTensor::numel() const {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

std::vector<LlamaTensor> llama_tensors(const ModelConfig& c) {
  const int64_t hidden = c.hidden_size, inter = c.intermediate_size, vocab = c.vocab_size;
  const int64_t head_dim = c.head_dim;
  const int64_t q_dim = static_cast<int64_t>(c.num_heads) * c.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(c.num_kv_heads) * c.head_dim;
  std::vector<LlamaTensor> out;
  int layer = -1;
  std::string prefix;
  // Appends a tensor after those already in the same fused weight.
  const auto add = [&](const std::string& name, std::vector<int64_t> shape, LlamaWeight weight) {
    LlamaTensor t{prefix + name, std::move(shape), layer, weight, 0};
    for (auto it = out.rbegin(); it != out.rend() && it->layer == layer; ++it) {
      if (it->weight == weight) {
        t.offset = it->offset + it->numel();
        break;
      }
    }
    out.push_back(std::move(t));
  };
  using W = LlamaWeight;
  add("model.embed_tokens.weight", {vocab, hidden}, W::kEmbedTokens);
  for (layer = 0; layer < c.num_layers; ++layer) {
    prefix = "model.layers." + std::to_string(layer) + ".";
    add("input_layernorm.weight", {hidden}, W::kInputNorm);
    add("post_attention_layernorm.weight", {hidden}, W::kPostNorm);
    add("self_attn.q_proj.weight", {q_dim, hidden}, W::kQkvProj);
    add("self_attn.k_proj.weight", {kv_dim, hidden}, W::kQkvProj);
    add("self_attn.v_proj.weight", {kv_dim, hidden}, W::kQkvProj);
    if (c.attention_bias) {
      add("self_attn.q_proj.bias", {q_dim}, W::kQkvBias);
      add("self_attn.k_proj.bias", {kv_dim}, W::kQkvBias);
      add("self_attn.v_proj.bias", {kv_dim}, W::kQkvBias);
    }
    if (c.qk_norm) {
      add("self_attn.q_norm.weight", {head_dim}, W::kQNorm);
      add("self_attn.k_norm.weight", {head_dim}, W::kKNorm);
    }
    add("self_attn.o_proj.weight", {hidden, q_dim}, W::kOProj);
    if (llama_has_o_proj_bias(c)) add("self_attn.o_proj.bias", {hidden}, W::kOBias);
    add("mlp.gate_proj.weight", {inter, hidden}, W::kGateUpProj);
    add("mlp.up_proj.weight", {inter, hidden}, W::kGateUpProj);
    add("mlp.down_proj.weight", {hidden, inter}, W::kDownProj);
  }
  layer = -1;
  prefix.clear();
  add("model.norm.weight", {hidden}, W::kFinalNorm);
  if (!c.tie_word_embeddings) add("lm_head.weight", {vocab, hidden}, W::kLmHead);
  return out;
}

std::string format_bytes(uint64_t bytes) {
  char text[32];
  if (bytes >= (1ull << 30)) {
    std::snprintf(text, sizeof(text), "%.2f GiB", static_cast<double>(bytes) / (1ull << 30));
  } else {
    std::snprintf(text, sizeof(text), "%.2f MiB", static_cast<double>(bytes) / (1ull << 20));
  }
  return text;
}

Status read_llama_weights(const std::string& model_dir, const ModelConfig& c, const ModelLoadOptions& options,
                          const std::function<Status(int layer, LlamaLayerWeights&& weights)>& on_layer,
                          LlamaOuterWeights& outer) {
  std::unique_ptr<SafetensorsCheckpoint> checkpoint;
  if (options.format != LoadFormat::kDummy) {
    STRATA_ASSIGN_OR_RETURN(checkpoint, SafetensorsCheckpoint::open(model_dir));
  }
  // Progress in tenths for checkpoints large enough to take a while (fp32 bytes as read).
  const uint64_t total_bytes = static_cast<uint64_t>(llama_num_parameters(c)) * sizeof(float);
  constexpr uint64_t kProgressMinBytes = 256ull << 20;
  uint64_t read_bytes = 0;
  int reported_tenths = 0;
  const ReadTensor read = [&](const std::string& name, const std::vector<int64_t>& shape,
                              std::vector<float>& out) -> Status {
    if (checkpoint) {
      STRATA_ASSIGN_OR_RETURN(out, checkpoint->read_f32(name, shape));
    } else {
      size_t numel = 1;
      for (int64_t d : shape) numel *= static_cast<size_t>(d);
      fill_dummy_tensor(name, options.dummy_seed, numel, out);
    }
    read_bytes += out.size() * sizeof(float);
    const int tenths = static_cast<int>(std::min<uint64_t>(10, read_bytes * 10 / std::max<uint64_t>(total_bytes, 1)));
    if (total_bytes >= kProgressMinBytes && tenths > reported_tenths) {
      reported_tenths = tenths;
      spdlog::info("{} weights: {}% ({} of {})", checkpoint ? "loading" : "making dummy", tenths * 10,
                   format_bytes(read_bytes), format_bytes(total_bytes));
    }
    return Status::ok_status();
  };

  LlamaLayerWeights layer;
  int current_layer = -1;
  std::vector<float> part;
  for (const LlamaTensor& t : llama_tensors(c)) {
    if (t.layer != current_layer && current_layer >= 0) {  // the previous layer is complete
      STRATA_RETURN_IF_ERROR(on_layer(current_layer, std::move(layer)));
      layer = LlamaLayerWeights();
    }
    current_layer = t.layer;
    std::vector<float>& fused = fused_weight(t.weight, layer, outer);
    if (t.offset == 0) {
      STRATA_RETURN_IF_ERROR(read(t.name, t.shape, fused));
    } else {
      STRATA_RETURN_IF_ERROR(read(t.name, t.shape, part));
      append(fused, part);
    }
  }
  if (current_layer >= 0) STRATA_RETURN_IF_ERROR(on_layer(current_layer, std::move(layer)));
  return Status::ok_status();
}

}  // namespace strata
