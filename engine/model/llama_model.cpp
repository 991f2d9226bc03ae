// LlamaModel on the CPU reference backend: HF Llama/Mistral/Qwen2/Qwen3 decoder layers as a
// sequence of kernels/cpu ops over a ragged batch and a paged fp32 KV cache.
#include "engine/model/llama_model.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "engine/model/llama_weights.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/kv_cache.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cpu/rope.h"

namespace strata {
namespace {

// MemAvailable from /proc/meminfo, or nothing where the kernel does not say.
std::optional<uint64_t> available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return std::nullopt;
}

}  // namespace

struct LlamaModel::Impl {
  ModelConfig config;
  int q_dim = 0;    // num_heads * head_dim
  int kv_dim = 0;   // num_kv_heads * head_dim
  int qkv_dim = 0;  // q_dim + 2 * kv_dim

  LlamaOuterWeights outer;  // embed_tokens, final_norm, lm_head
  std::vector<LlamaLayerWeights> layers;
  std::vector<float> inv_freq;    // [head_dim / 2]
  size_t weight_bytes = 0;

  // Activations, reused across forwards (they only grow).
  std::vector<float> hidden;               // [num_tokens, hidden]  residual stream
  std::vector<float> normed;               // [num_tokens, hidden]
  std::vector<float> qkv;                  // [num_tokens, qkv_dim]
  std::vector<float> attn_out;             // [num_tokens, q_dim]
  std::vector<float> delta;                // [num_tokens, hidden]  o_proj / down_proj output
  std::vector<float> gate_up;              // [num_tokens, 2 * intermediate]
  std::vector<float> mlp_act;              // [num_tokens, intermediate]
  std::vector<float> logits_rows;          // [num_logits, hidden]
  std::vector<int64_t> slot_mapping;       // [num_tokens]
  std::vector<int32_t> flat_block_tables;  // [num_seqs, max_blocks_per_seq]

  const float* lm_head_weight() const {
    return outer.lm_head.empty() ? outer.embed_tokens.data() : outer.lm_head.data();
  }

  Status load_weights(const std::string& model_dir, const ModelLoadOptions& options);
  Status validate(const ForwardBatch& batch, const KvCacheStorage& kv, std::span<float> logits) const;
  void prepare_paging(const ForwardBatch& batch, int block_size, int& max_blocks_per_seq);
};

Status LlamaModel::Impl::load_weights(const std::string& model_dir, const ModelLoadOptions& options) {
  layers.resize(config.num_layers);
  STRATA_RETURN_IF_ERROR(read_llama_weights(
      model_dir, config, options,
      [&](int layer, LlamaLayerWeights&& weights) {
        weight_bytes += weights.num_floats() * sizeof(float);
        layers[layer] = std::move(weights);
        return Status::ok_status();
      },
      outer));
  weight_bytes += outer.num_floats() * sizeof(float);
  return Status::ok_status();
}

Status LlamaModel::Impl::validate(const ForwardBatch& batch, const KvCacheStorage& kv, std::span<float> logits) const {
  const ModelConfig& c = config;
  if (kv.num_layers() != c.num_layers || kv.num_kv_heads() != c.num_kv_heads || kv.head_dim() != c.head_dim) {
    return invalid_argument("forward: KV cache shape (layers " + std::to_string(kv.num_layers()) + ", kv heads " +
                            std::to_string(kv.num_kv_heads()) + ", head_dim " + std::to_string(kv.head_dim()) +
                            ") does not match the model (" + std::to_string(c.num_layers) + ", " +
                            std::to_string(c.num_kv_heads) + ", " + std::to_string(c.head_dim) + ")");
  }
  if (kv.block_size() <= 0) return invalid_argument("forward: KV cache block_size must be positive");
  const int num_tokens = batch.num_tokens();
  const int num_seqs = batch.num_seqs();
  if (static_cast<int>(batch.positions.size()) != num_tokens) {
    return invalid_argument("forward: " + std::to_string(batch.positions.size()) + " positions for " +
                            std::to_string(num_tokens) + " tokens");
  }
  if (static_cast<int>(batch.query_start.size()) != num_seqs + 1) {
    return invalid_argument("forward: query_start has " + std::to_string(batch.query_start.size()) +
                            " entries, expected num_seqs + 1 = " + std::to_string(num_seqs + 1));
  }
  if (static_cast<int>(batch.block_tables.size()) != num_seqs) {
    return invalid_argument("forward: " + std::to_string(batch.block_tables.size()) + " block tables for " +
                            std::to_string(num_seqs) + " sequences");
  }
  if (batch.query_start[0] != 0 || batch.query_start[num_seqs] != num_tokens) {
    return invalid_argument("forward: query_start must run from 0 to num_tokens (" + std::to_string(num_tokens) +
                            "), got " + std::to_string(batch.query_start[0]) + ".." +
                            std::to_string(batch.query_start[num_seqs]));
  }
  const int block_size = kv.block_size();
  for (int s = 0; s < num_seqs; ++s) {
    const int num_new = batch.query_start[s + 1] - batch.query_start[s];
    const int context_len = batch.context_lens[s];
    const std::string seq = "forward: sequence " + std::to_string(s);
    if (num_new < 1) return invalid_argument(seq + " has " + std::to_string(num_new) + " new tokens (need >= 1)");
    if (context_len < num_new) {
      return invalid_argument(seq + ": context_len (" + std::to_string(context_len) + ") is smaller than its " +
                              std::to_string(num_new) + " new tokens");
    }
    const int64_t blocks_needed = (static_cast<int64_t>(context_len) + block_size - 1) / block_size;
    const auto& table = batch.block_tables[s];
    if (static_cast<int64_t>(table.size()) < blocks_needed) {
      return invalid_argument(seq + ": block table has " + std::to_string(table.size()) + " blocks, " +
                              std::to_string(blocks_needed) + " needed for context_len " + std::to_string(context_len) +
                              " at block_size " + std::to_string(block_size));
    }
    for (int64_t b = 0; b < blocks_needed; ++b) {
      if (table[b] < 0 || table[b] >= kv.num_blocks()) {
        return invalid_argument(seq + ": block table entry " + std::to_string(b) + " (" + std::to_string(table[b]) +
                                ") is outside the KV cache's " + std::to_string(kv.num_blocks()) + " blocks");
      }
    }
  }
  for (int t = 0; t < num_tokens; ++t) {
    if (batch.token_ids[t] < 0 || batch.token_ids[t] >= c.vocab_size) {
      return invalid_argument("forward: token " + std::to_string(t) + " has id " + std::to_string(batch.token_ids[t]) +
                              " outside the vocabulary [0, " + std::to_string(c.vocab_size) + ")");
    }
    if (batch.positions[t] < 0) {
      return invalid_argument("forward: token " + std::to_string(t) + " has negative position " +
                              std::to_string(batch.positions[t]));
    }
  }
  for (size_t i = 0; i < batch.logits_indices.size(); ++i) {
    const int32_t row = batch.logits_indices[i];
    if (row < 0 || row >= num_tokens) {
      return invalid_argument("forward: logits_indices[" + std::to_string(i) + "] (" + std::to_string(row) +
                              ") is not a token of the batch (" + std::to_string(num_tokens) + " tokens)");
    }
  }
  const size_t logits_needed = batch.logits_indices.size() * static_cast<size_t>(c.vocab_size);
  if (logits.size() != logits_needed) {
    return invalid_argument("forward: logits buffer holds " + std::to_string(logits.size()) + " floats, expected " +
                            std::to_string(batch.logits_indices.size()) + " rows x vocab " +
                            std::to_string(c.vocab_size) + " = " + std::to_string(logits_needed));
  }
  return Status::ok_status();
}

// Fills slot_mapping (cache slot of each new token) and the flat, padded block tables that
// the attention kernel reads.
void LlamaModel::Impl::prepare_paging(const ForwardBatch& batch, int block_size, int& max_blocks_per_seq) {
  const int num_seqs = batch.num_seqs();
  max_blocks_per_seq = 1;
  for (int s = 0; s < num_seqs; ++s) {
    max_blocks_per_seq = std::max(max_blocks_per_seq, (batch.context_lens[s] + block_size - 1) / block_size);
  }
  flat_block_tables.assign(static_cast<size_t>(num_seqs) * max_blocks_per_seq, 0);
  slot_mapping.resize(batch.num_tokens());
  for (int s = 0; s < num_seqs; ++s) {
    const auto& table = batch.block_tables[s];
    const int blocks = (batch.context_lens[s] + block_size - 1) / block_size;
    std::copy_n(table.begin(), blocks, flat_block_tables.begin() + static_cast<int64_t>(s) * max_blocks_per_seq);
    const int begin = batch.query_start[s];
    const int first_slot = batch.context_lens[s] - (batch.query_start[s + 1] - begin);
    for (int t = begin; t < batch.query_start[s + 1]; ++t) {
      const int slot = first_slot + (t - begin);
      slot_mapping[t] = static_cast<int64_t>(table[slot / block_size]) * block_size + slot % block_size;
    }
  }
}

LlamaModel::LlamaModel() : impl_(std::make_unique<Impl>()) {}
LlamaModel::~LlamaModel() = default;

const ModelConfig& LlamaModel::config() const { return impl_->config; }
size_t LlamaModel::weight_bytes() const { return impl_->weight_bytes; }

Result<std::unique_ptr<LlamaModel>> LlamaModel::load(const std::string& model_dir, const ModelConfig& config,
                                                     const ModelLoadOptions& options) {
  if (config.vocab_size <= 0 || config.hidden_size <= 0 || config.intermediate_size <= 0 || config.num_layers <= 0 ||
      config.num_heads <= 0 || config.num_kv_heads <= 0 || config.head_dim <= 0) {
    return invalid_argument(model_dir + ": model config has a non-positive dimension");
  }
  if (config.num_heads % config.num_kv_heads != 0) {
    return invalid_argument(model_dir + ": num_key_value_heads (" + std::to_string(config.num_kv_heads) +
                            ") must divide num_attention_heads (" + std::to_string(config.num_heads) + ")");
  }
  if (config.head_dim % 2 != 0) {
    return invalid_argument(model_dir + ": head_dim (" + std::to_string(config.head_dim) + ") must be even");
  }
  std::unique_ptr<LlamaModel> model(new LlamaModel());
  Impl& impl = *model->impl_;
  impl.config = config;
  impl.q_dim = config.num_heads * config.head_dim;
  impl.kv_dim = config.num_kv_heads * config.head_dim;
  impl.qkv_dim = impl.q_dim + 2 * impl.kv_dim;
  impl.inv_freq = llama_inv_freq(config);
  if (options.format != LoadFormat::kDummy) {
    STRATA_RETURN_IF_ERROR(impl.load_weights(model_dir, options));
    return model;
  }

  const int64_t num_params = llama_num_parameters(config);
  const uint64_t bytes = static_cast<uint64_t>(num_params) * sizeof(float);
  const std::string what = model_dir + ": dummy weights (" + config.architecture + ", " + std::to_string(num_params) +
                           " parameters) need " + format_bytes(bytes) + " as fp32";
  spdlog::info("{}; no weight file is read", what);
  if (const auto available = available_memory_bytes(); available && bytes > *available) {
    return resource_exhausted(what + ", but only " + format_bytes(*available) + " of memory is available");
  }
  try {
    STRATA_RETURN_IF_ERROR(impl.load_weights(model_dir, options));
  } catch (const std::bad_alloc&) {
    return resource_exhausted(what + ", and allocating them failed after " + format_bytes(impl.weight_bytes));
  }
  return model;
}

Status LlamaModel::forward(const ForwardBatch& batch, KvCacheStorage& kv, std::span<float> logits) {
  Impl& m = *impl_;
  STRATA_RETURN_IF_ERROR(m.validate(batch, kv, logits));
  const ModelConfig& c = m.config;
  const int num_tokens = batch.num_tokens();
  if (num_tokens == 0) return Status::ok_status();
  const int hidden = c.hidden_size, inter = c.intermediate_size;
  const float eps = c.rms_norm_eps;
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  const int sliding_window = c.sliding_window.value_or(0);

  const auto rows = [num_tokens](int width) { return static_cast<size_t>(num_tokens) * width; };
  m.hidden.resize(rows(hidden));
  m.normed.resize(rows(hidden));
  m.qkv.resize(rows(m.qkv_dim));
  m.attn_out.resize(rows(m.q_dim));
  m.delta.resize(rows(hidden));
  m.gate_up.resize(rows(2 * inter));
  m.mlp_act.resize(rows(inter));
  int max_blocks_per_seq = 0;
  m.prepare_paging(batch, kv.block_size(), max_blocks_per_seq);

  cpu::embedding_lookup(batch.token_ids.data(), num_tokens, m.outer.embed_tokens.data(), hidden, m.hidden.data());
  for (int l = 0; l < c.num_layers; ++l) {
    const LlamaLayerWeights& w = m.layers[l];
    // The previous layer's MLP output joins the residual stream here, fused with this norm.
    if (l == 0) {
      cpu::rms_norm(m.hidden.data(), w.input_norm.data(), m.normed.data(), num_tokens, hidden, eps);
    } else {
      cpu::fused_add_rms_norm(m.hidden.data(), m.delta.data(), w.input_norm.data(), m.normed.data(), num_tokens, hidden,
                              eps);
    }

    // Attention: fused qkv rows [q | k | v]; q and k are normalized and rotated in place.
    float* q = m.qkv.data();
    float* k = q + m.q_dim;
    float* v = k + m.kv_dim;
    cpu::linear(m.normed.data(), w.qkv_proj.data(), w.qkv_bias.empty() ? nullptr : w.qkv_bias.data(), q, num_tokens,
                hidden, m.qkv_dim);
    if (c.qk_norm) {
      cpu::head_rms_norm(q, num_tokens, c.num_heads, c.head_dim, m.qkv_dim, w.q_norm.data(), eps);
      cpu::head_rms_norm(k, num_tokens, c.num_kv_heads, c.head_dim, m.qkv_dim, w.k_norm.data(), eps);
    }
    cpu::rope_neox(q, m.qkv_dim, c.num_heads, k, m.qkv_dim, c.num_kv_heads, batch.positions.data(), num_tokens,
                   c.head_dim, m.inv_freq.data());
    cpu::write_kv_cache(k, m.qkv_dim, v, m.qkv_dim, m.slot_mapping.data(), num_tokens, c.num_kv_heads, c.head_dim,
                        kv.k(l), kv.v(l));
    cpu::paged_attention(m.attn_out.data(), q, m.qkv_dim, kv.k(l), kv.v(l), m.flat_block_tables.data(),
                         max_blocks_per_seq, batch.query_start.data(), batch.context_lens.data(), batch.num_seqs(),
                         c.num_heads, c.num_kv_heads, c.head_dim, kv.block_size(), scale, sliding_window);
    cpu::linear(m.attn_out.data(), w.o_proj.data(), w.o_bias.empty() ? nullptr : w.o_bias.data(), m.delta.data(),
                num_tokens, m.q_dim, hidden);

    // MLP: down(silu(gate(x)) * up(x)).
    cpu::fused_add_rms_norm(m.hidden.data(), m.delta.data(), w.post_norm.data(), m.normed.data(), num_tokens, hidden,
                            eps);
    cpu::linear(m.normed.data(), w.gate_up_proj.data(), nullptr, m.gate_up.data(), num_tokens, hidden, 2 * inter);
    cpu::silu_and_mul(m.gate_up.data(), m.mlp_act.data(), num_tokens, inter);
    cpu::linear(m.mlp_act.data(), w.down_proj.data(), nullptr, m.delta.data(), num_tokens, inter, hidden);
  }

  // Final norm and lm_head only for the rows that return logits.
  const int num_logits = static_cast<int>(batch.logits_indices.size());
  if (num_logits == 0) return Status::ok_status();
  m.logits_rows.resize(static_cast<size_t>(num_logits) * hidden);
  for (int i = 0; i < num_logits; ++i) {
    const size_t src = static_cast<size_t>(batch.logits_indices[i]) * hidden;
    float* dst = m.logits_rows.data() + static_cast<size_t>(i) * hidden;
    for (int j = 0; j < hidden; ++j) dst[j] = m.hidden[src + j] + m.delta[src + j];
  }
  cpu::rms_norm(m.logits_rows.data(), m.outer.final_norm.data(), m.logits_rows.data(), num_logits, hidden, eps);
  cpu::linear(m.logits_rows.data(), m.lm_head_weight(), nullptr, logits.data(), num_logits, hidden, c.vocab_size);
  return Status::ok_status();
}

}  // namespace strata
