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

  const int64_t hidden = c.hidden_size, inter = c.intermediate_size, vocab = c.vocab_size;
  const int64_t head_dim = c.head_dim;
  const int64_t q_dim = static_cast<int64_t>(c.num_heads) * c.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(c.num_kv_heads) * c.head_dim;
  const bool o_proj_bias = llama_has_o_proj_bias(c);

  STRATA_RETURN_IF_ERROR(read("model.embed_tokens.weight", {vocab, hidden}, outer.embed_tokens));
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    LlamaLayerWeights layer;
    STRATA_RETURN_IF_ERROR(read(p + "input_layernorm.weight", {hidden}, layer.input_norm));
    STRATA_RETURN_IF_ERROR(read(p + "post_attention_layernorm.weight", {hidden}, layer.post_norm));

    std::vector<float> part;
    layer.qkv_proj.reserve(static_cast<size_t>(q_dim + 2 * kv_dim) * hidden);
    STRATA_RETURN_IF_ERROR(read(p + "self_attn.q_proj.weight", {q_dim, hidden}, part));
    append(layer.qkv_proj, part);
    STRATA_RETURN_IF_ERROR(read(p + "self_attn.k_proj.weight", {kv_dim, hidden}, part));
    append(layer.qkv_proj, part);
    STRATA_RETURN_IF_ERROR(read(p + "self_attn.v_proj.weight", {kv_dim, hidden}, part));
    append(layer.qkv_proj, part);
    if (c.attention_bias) {
      STRATA_RETURN_IF_ERROR(read(p + "self_attn.q_proj.bias", {q_dim}, part));
      append(layer.qkv_bias, part);
      STRATA_RETURN_IF_ERROR(read(p + "self_attn.k_proj.bias", {kv_dim}, part));
      append(layer.qkv_bias, part);
      STRATA_RETURN_IF_ERROR(read(p + "self_attn.v_proj.bias", {kv_dim}, part));
      append(layer.qkv_bias, part);
    }
    if (c.qk_norm) {
      STRATA_RETURN_IF_ERROR(read(p + "self_attn.q_norm.weight", {head_dim}, layer.q_norm));
      STRATA_RETURN_IF_ERROR(read(p + "self_attn.k_norm.weight", {head_dim}, layer.k_norm));
    }
    STRATA_RETURN_IF_ERROR(read(p + "self_attn.o_proj.weight", {hidden, q_dim}, layer.o_proj));
    if (o_proj_bias) STRATA_RETURN_IF_ERROR(read(p + "self_attn.o_proj.bias", {hidden}, layer.o_bias));

    layer.gate_up_proj.reserve(static_cast<size_t>(2 * inter * hidden));
    STRATA_RETURN_IF_ERROR(read(p + "mlp.gate_proj.weight", {inter, hidden}, part));
    append(layer.gate_up_proj, part);
    STRATA_RETURN_IF_ERROR(read(p + "mlp.up_proj.weight", {inter, hidden}, part));
    append(layer.gate_up_proj, part);
    STRATA_RETURN_IF_ERROR(read(p + "mlp.down_proj.weight", {hidden, inter}, layer.down_proj));
    STRATA_RETURN_IF_ERROR(on_layer(i, std::move(layer)));
  }
  STRATA_RETURN_IF_ERROR(read("model.norm.weight", {hidden}, outer.final_norm));
  if (!c.tie_word_embeddings) STRATA_RETURN_IF_ERROR(read("lm_head.weight", {vocab, hidden}, outer.lm_head));
  return Status::ok_status();
}

}  // namespace strata
