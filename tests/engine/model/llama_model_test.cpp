// Tests engine/model/llama_model.cpp: tiny random checkpoints of each Llama-family variant
// written by the test (safetensors + config.json), checked for prefill / chunked prefill /
// decode agreement through the paged cache, batch independence and input validation; and,
// when present, the transformers golden checkpoints under tests/golden/models.
#include "engine/model/llama_model.h"
#include "tests/temp_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <numbers>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace strata {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

uint64_t test_seed() {
  if (const char* env = std::getenv("STRATA_TEST_SEED")) return std::strtoull(env, nullptr, 10);
  return std::random_device{}();
}

// ---------------------------------------------------------------------------------------------
// A tiny safetensors writer (F32 only) and a temp folder for a random checkpoint.

struct NamedTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

void write_safetensors(const fs::path& path, const std::map<std::string, NamedTensor>& tensors) {
  Json header = Json::object();
  header["__metadata__"] = {{"format", "pt"}};
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const size_t nbytes = t.data.size() * sizeof(float);
    header[name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the format pads the header to 8 bytes
  std::ofstream out(path, std::ios::binary);
  const uint64_t header_len = text.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((header_len >> (8 * i)) & 0xff));
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& [name, t] : tensors) {
    out.write(reinterpret_cast<const char*>(t.data.data()), static_cast<std::streamsize>(t.data.size() * 4));
  }
}

using testing::TempDir;

struct TinySpec {
  std::string name;
  std::string architecture;
  std::string model_type;
  int vocab = 61, hidden = 32, intermediate = 48, layers = 2, heads = 4, kv_heads = 2, head_dim = 8;
  bool tie = false;
  bool qkv_bias = false;  // Qwen2 style
  bool qk_norm = false;   // Qwen3 style
  bool llama3_rope = false;
  int sliding_window = 0;  // Mistral style; 0 = none
};

std::ostream& operator<<(std::ostream& os, const TinySpec& s) { return os << s.name; }

Json make_config_json(const TinySpec& s) {
  Json c = {{"architectures", {s.architecture}},
            {"model_type", s.model_type},
            {"vocab_size", s.vocab},
            {"hidden_size", s.hidden},
            {"intermediate_size", s.intermediate},
            {"num_hidden_layers", s.layers},
            {"num_attention_heads", s.heads},
            {"num_key_value_heads", s.kv_heads},
            {"head_dim", s.head_dim},
            {"max_position_embeddings", 256},
            {"rms_norm_eps", 1e-6},
            {"rope_theta", 10000.0},
            {"tie_word_embeddings", s.tie},
            {"torch_dtype", "float32"},
            {"bos_token_id", 1},
            {"eos_token_id", 2}};
  if (s.llama3_rope) {
    // A short original context so that all three frequency bands occur at head_dim 8.
    c["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", 8.0},
                         {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0},
                         {"original_max_position_embeddings", 64}};
  }
  if (s.sliding_window > 0) c["sliding_window"] = s.sliding_window;
  if (s.model_type == "qwen2" || s.model_type == "qwen3") c["use_sliding_window"] = false;
  return c;
}

std::map<std::string, NamedTensor> make_weights(const TinySpec& s, std::mt19937_64& rng) {
  std::map<std::string, NamedTensor> w;
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols) {
    NamedTensor t{{rows, cols}, std::vector<float>(rows * cols)};
    const float scale = 1.0f / std::sqrt(static_cast<float>(cols));
    for (auto& x : t.data) x = unit(rng) * scale;
    w[name] = std::move(t);
  };
  auto vector = [&](const std::string& name, int64_t n, float center, float spread) {
    NamedTensor t{{n}, std::vector<float>(n)};
    for (auto& x : t.data) x = center + spread * unit(rng);
    w[name] = std::move(t);
  };
  const int q_dim = s.heads * s.head_dim, kv_dim = s.kv_heads * s.head_dim;
  matrix("model.embed_tokens.weight", s.vocab, s.hidden);
  for (int i = 0; i < s.layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    vector(p + "input_layernorm.weight", s.hidden, 1.0f, 0.3f);
    vector(p + "post_attention_layernorm.weight", s.hidden, 1.0f, 0.3f);
    matrix(p + "self_attn.q_proj.weight", q_dim, s.hidden);
    matrix(p + "self_attn.k_proj.weight", kv_dim, s.hidden);
    matrix(p + "self_attn.v_proj.weight", kv_dim, s.hidden);
    matrix(p + "self_attn.o_proj.weight", s.hidden, q_dim);
    if (s.qkv_bias) {
      vector(p + "self_attn.q_proj.bias", q_dim, 0.0f, 0.5f);
      vector(p + "self_attn.k_proj.bias", kv_dim, 0.0f, 0.5f);
      vector(p + "self_attn.v_proj.bias", kv_dim, 0.0f, 0.5f);
    }
    if (s.qk_norm) {
      vector(p + "self_attn.q_norm.weight", s.head_dim, 1.0f, 0.3f);
      vector(p + "self_attn.k_norm.weight", s.head_dim, 1.0f, 0.3f);
    }
    matrix(p + "mlp.gate_proj.weight", s.intermediate, s.hidden);
    matrix(p + "mlp.up_proj.weight", s.intermediate, s.hidden);
    matrix(p + "mlp.down_proj.weight", s.hidden, s.intermediate);
  }
  vector("model.norm.weight", s.hidden, 1.0f, 0.3f);
  if (!s.tie) matrix("lm_head.weight", s.vocab, s.hidden);
  return w;
}

void write_checkpoint(const fs::path& dir, const TinySpec& spec, const std::map<std::string, NamedTensor>& weights) {
  write_safetensors(dir / "model.safetensors", weights);
  std::ofstream(dir / "config.json") << make_config_json(spec).dump(2);
}

std::unique_ptr<LlamaModel> load_model(const fs::path& dir) {
  auto config = load_model_config(dir.string());
  EXPECT_TRUE(config.ok()) << config.status().to_string();
  if (!config.ok()) return nullptr;
  auto model = LlamaModel::load(dir.string(), *config);
  EXPECT_TRUE(model.ok()) << model.status().to_string();
  if (!model.ok()) return nullptr;
  return std::move(model).value();
}

// ---------------------------------------------------------------------------------------------
// Driving sequences through forward().

constexpr int kBlockSize = 4;

// One sequence's state across steps: its tokens so far (computed) and its block table.
struct SeqState {
  std::vector<int32_t> tokens;  // all tokens of the sequence
  int num_computed = 0;
  std::vector<int32_t> block_table;
};

// Allocates blocks to cover `context_len` slots from `free_blocks` (front first).
void grow_table(SeqState& seq, int context_len, std::vector<int32_t>& free_blocks) {
  while (static_cast<int>(seq.block_table.size()) * kBlockSize < context_len) {
    seq.block_table.push_back(free_blocks.front());
    free_blocks.erase(free_blocks.begin());
  }
}

// Runs one step in which sequence i computes its next chunk[i] tokens (0 = not scheduled) and
// returns the logits of every new token of every scheduled sequence, in batch order.
std::vector<std::vector<float>> run_step(LlamaModel& model, KvCacheStorage& kv, std::vector<SeqState*> seqs,
                                         const std::vector<int>& chunk, std::vector<int32_t>& free_blocks) {
  ForwardBatch batch;
  batch.query_start.push_back(0);
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (chunk[i] == 0) continue;
    SeqState& s = *seqs[i];
    const int end = s.num_computed + chunk[i];
    grow_table(s, end, free_blocks);
    for (int t = s.num_computed; t < end; ++t) {
      batch.token_ids.push_back(s.tokens[t]);
      batch.positions.push_back(t);
      batch.logits_indices.push_back(static_cast<int32_t>(batch.token_ids.size()) - 1);
    }
    batch.query_start.push_back(static_cast<int32_t>(batch.token_ids.size()));
    batch.context_lens.push_back(end);
    batch.block_tables.push_back(s.block_table);
    s.num_computed = end;
  }
  const int vocab = model.config().vocab_size;
  std::vector<float> logits(batch.logits_indices.size() * vocab);
  const Status st = model.forward(batch, kv, logits);
  EXPECT_TRUE(st.ok()) << st.to_string();
  std::vector<std::vector<float>> rows;
  for (size_t r = 0; r < batch.logits_indices.size(); ++r) {
    rows.emplace_back(logits.begin() + r * vocab, logits.begin() + (r + 1) * vocab);
  }
  return rows;
}

std::vector<int32_t> all_blocks(int n) {
  std::vector<int32_t> blocks(n);
  std::iota(blocks.begin(), blocks.end(), 0);
  return blocks;
}

KvCacheStorage make_kv(const ModelConfig& c, int num_blocks) {
  return KvCacheStorage(c.num_layers, num_blocks, kBlockSize, c.num_kv_heads, c.head_dim);
}

// Per-position logits of one sequence fed in chunks of `chunk` tokens, alone in its cache.
std::vector<std::vector<float>> run_in_chunks(LlamaModel& model, const std::vector<int32_t>& tokens, int chunk) {
  KvCacheStorage kv = make_kv(model.config(), 64);
  std::vector<int32_t> free_blocks = all_blocks(64);
  SeqState seq{tokens, 0, {}};
  std::vector<std::vector<float>> all;
  while (seq.num_computed < static_cast<int>(tokens.size())) {
    const int n = std::min<int>(chunk, static_cast<int>(tokens.size()) - seq.num_computed);
    auto rows = run_step(model, kv, {&seq}, {n}, free_blocks);
    all.insert(all.end(), rows.begin(), rows.end());
  }
  return all;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

std::vector<int32_t> random_tokens(std::mt19937_64& rng, int n, int vocab) {
  std::vector<int32_t> t(n);
  for (auto& x : t) x = std::uniform_int_distribution<int32_t>(0, vocab - 1)(rng);
  return t;
}

// A dense, double-precision forward written from the HF modeling code, independent of the
// kernels: per-position logits of one sequence starting at position 0.
std::vector<std::vector<float>> naive_forward(const TinySpec& s, const std::map<std::string, NamedTensor>& w,
                                              const std::vector<int32_t>& tokens) {
  using Vec = std::vector<double>;
  const int n = static_cast<int>(tokens.size()), d = s.head_dim, half = d / 2;
  const double eps = 1e-6;
  auto W = [&](const std::string& name) -> const std::vector<float>& { return w.at(name).data; };
  auto rmsnorm = [&](const Vec& x, const std::vector<float>& weight) {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double inv = 1.0 / std::sqrt(ss / x.size() + eps);
    Vec out(x.size());
    for (size_t i = 0; i < x.size(); ++i) out[i] = x[i] * inv * weight[i];
    return out;
  };
  auto matvec = [](const std::vector<float>& m, const Vec& x, size_t rows) {
    Vec y(rows, 0.0);
    for (size_t r = 0; r < rows; ++r)
      for (size_t i = 0; i < x.size(); ++i) y[r] += double(m[r * x.size() + i]) * x[i];
    return y;
  };
  std::vector<double> inv_freq(half);
  for (int i = 0; i < half; ++i) {
    double f = std::pow(10000.0, -2.0 * i / d);
    if (s.llama3_rope) {  // factor 8, low 1, high 4, original 64 (make_config_json)
      const double wavelen = 2 * std::numbers::pi / f;
      if (wavelen > 64.0 / 1.0) {
        f /= 8.0;
      } else if (wavelen >= 64.0 / 4.0) {
        const double smooth = (64.0 / wavelen - 1.0) / (4.0 - 1.0);
        f = (1 - smooth) * f / 8.0 + smooth * f;
      }
    }
    inv_freq[i] = f;
  }
  auto rope = [&](double* head, int pos) {
    for (int i = 0; i < half; ++i) {
      const double a = head[i], b = head[i + half], angle = pos * inv_freq[i];
      head[i] = a * std::cos(angle) - b * std::sin(angle);
      head[i + half] = b * std::cos(angle) + a * std::sin(angle);
    }
  };
  auto head_norm = [&](double* head, const std::vector<float>& weight) {
    Vec h(head, head + d);
    h = rmsnorm(h, weight);
    std::copy(h.begin(), h.end(), head);
  };

  std::vector<Vec> x(n, Vec(s.hidden));
  for (int t = 0; t < n; ++t)
    for (int i = 0; i < s.hidden; ++i) x[t][i] = W("model.embed_tokens.weight")[tokens[t] * s.hidden + i];
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    std::vector<Vec> q(n), k(n), v(n);
    for (int t = 0; t < n; ++t) {
      const Vec h = rmsnorm(x[t], W(p + "input_layernorm.weight"));
      q[t] = matvec(W(p + "self_attn.q_proj.weight"), h, s.heads * d);
      k[t] = matvec(W(p + "self_attn.k_proj.weight"), h, s.kv_heads * d);
      v[t] = matvec(W(p + "self_attn.v_proj.weight"), h, s.kv_heads * d);
      if (s.qkv_bias) {
        for (size_t i = 0; i < q[t].size(); ++i) q[t][i] += W(p + "self_attn.q_proj.bias")[i];
        for (size_t i = 0; i < k[t].size(); ++i) k[t][i] += W(p + "self_attn.k_proj.bias")[i];
        for (size_t i = 0; i < v[t].size(); ++i) v[t][i] += W(p + "self_attn.v_proj.bias")[i];
      }
      for (int h2 = 0; h2 < s.heads; ++h2) {
        if (s.qk_norm) head_norm(&q[t][h2 * d], W(p + "self_attn.q_norm.weight"));
        rope(&q[t][h2 * d], t);
      }
      for (int h2 = 0; h2 < s.kv_heads; ++h2) {
        if (s.qk_norm) head_norm(&k[t][h2 * d], W(p + "self_attn.k_norm.weight"));
        rope(&k[t][h2 * d], t);
      }
    }
    for (int t = 0; t < n; ++t) {
      Vec attn(s.heads * d, 0.0);
      for (int h2 = 0; h2 < s.heads; ++h2) {
        const int kvh = h2 / (s.heads / s.kv_heads);
        const int lo = s.sliding_window > 0 ? std::max(0, t - s.sliding_window + 1) : 0;
        Vec score(t + 1, 0.0);
        double mx = -1e300, sum = 0;
        for (int j = lo; j <= t; ++j) {
          for (int i = 0; i < d; ++i) score[j] += q[t][h2 * d + i] * k[j][kvh * d + i];
          score[j] /= std::sqrt(double(d));
          mx = std::max(mx, score[j]);
        }
        for (int j = lo; j <= t; ++j) sum += (score[j] = std::exp(score[j] - mx));
        for (int j = lo; j <= t; ++j)
          for (int i = 0; i < d; ++i) attn[h2 * d + i] += score[j] / sum * v[j][kvh * d + i];
      }
      const Vec o = matvec(W(p + "self_attn.o_proj.weight"), attn, s.hidden);
      for (int i = 0; i < s.hidden; ++i) x[t][i] += o[i];
      const Vec h = rmsnorm(x[t], W(p + "post_attention_layernorm.weight"));
      const Vec gate = matvec(W(p + "mlp.gate_proj.weight"), h, s.intermediate);
      const Vec up = matvec(W(p + "mlp.up_proj.weight"), h, s.intermediate);
      Vec act(s.intermediate);
      for (int i = 0; i < s.intermediate; ++i) act[i] = gate[i] / (1 + std::exp(-gate[i])) * up[i];
      const Vec down = matvec(W(p + "mlp.down_proj.weight"), act, s.hidden);
      for (int i = 0; i < s.hidden; ++i) x[t][i] += down[i];
    }
  }
  std::vector<std::vector<float>> logits(n);
  const auto& lm_head = W(s.tie ? "model.embed_tokens.weight" : "lm_head.weight");
  for (int t = 0; t < n; ++t) {
    const Vec out = matvec(lm_head, rmsnorm(x[t], W("model.norm.weight")), s.vocab);
    logits[t].assign(out.begin(), out.end());
  }
  return logits;
}

// ---------------------------------------------------------------------------------------------

class TinyLlamaTest : public ::testing::TestWithParam<TinySpec> {
 protected:
  void SetUp() override {
    seed_ = test_seed();
    rng_.seed(seed_);
    weights_ = make_weights(GetParam(), rng_);
    write_checkpoint(dir_.path(), GetParam(), weights_);
    model_ = load_model(dir_.path());
    ASSERT_NE(model_, nullptr);
  }
  std::string seed_note() const { return "seed " + std::to_string(seed_) + " (STRATA_TEST_SEED)"; }

  TempDir dir_;
  uint64_t seed_ = 0;
  std::mt19937_64 rng_;
  std::map<std::string, NamedTensor> weights_;
  std::unique_ptr<LlamaModel> model_;
};

TEST_P(TinyLlamaTest, PrefillMatchesDenseDoublePrecisionReference) {
  SCOPED_TRACE(seed_note());
  const auto prompt = random_tokens(rng_, 13, GetParam().vocab);
  const auto logits = run_in_chunks(*model_, prompt, 13);
  const auto expected = naive_forward(GetParam(), weights_, prompt);
  ASSERT_EQ(logits.size(), expected.size());
  for (size_t t = 0; t < prompt.size(); ++t) {
    EXPECT_LE(max_abs_diff(logits[t], expected[t]), 1e-4f) << "position " << t;
  }
}

TEST_P(TinyLlamaTest, PrefillChunkedPrefillAndDecodeAgree) {
  SCOPED_TRACE(seed_note());
  const auto prompt = random_tokens(rng_, 13, GetParam().vocab);
  const auto prefill = run_in_chunks(*model_, prompt, 13);
  const auto chunked = run_in_chunks(*model_, prompt, 3);
  const auto decode = run_in_chunks(*model_, prompt, 1);
  ASSERT_EQ(prefill.size(), prompt.size());
  ASSERT_EQ(chunked.size(), prompt.size());
  ASSERT_EQ(decode.size(), prompt.size());
  for (size_t t = 0; t < prompt.size(); ++t) {
    EXPECT_LE(max_abs_diff(chunked[t], prefill[t]), 1e-5f) << "chunked, position " << t;
    EXPECT_LE(max_abs_diff(decode[t], prefill[t]), 1e-5f) << "decode, position " << t;
  }
  // The logits are not degenerate (random weights give distinct rows).
  EXPECT_GT(max_abs_diff(prefill[0], prefill.back()), 1e-3f);
}

TEST_P(TinyLlamaTest, BatchedSequencesMatchEachAlone) {
  SCOPED_TRACE(seed_note());
  const int vocab = GetParam().vocab;
  std::vector<SeqState> alone = {{random_tokens(rng_, 11, vocab), 0, {}},
                                 {random_tokens(rng_, 6, vocab), 0, {}},
                                 {random_tokens(rng_, 14, vocab), 0, {}}};
  // Steps of (chunk per sequence): mixed prefill chunks and decodes; sequence 1 joins late.
  const std::vector<std::vector<int>> steps = {{7, 0, 10}, {1, 4, 1}, {3, 2, 3}};

  // Batched: one shared cache with shuffled blocks.
  const int num_blocks = 40;
  KvCacheStorage kv = make_kv(model_->config(), num_blocks);
  std::vector<int32_t> free_blocks = all_blocks(num_blocks);
  std::shuffle(free_blocks.begin(), free_blocks.end(), rng_);
  std::vector<SeqState> batched = alone;
  std::vector<std::vector<std::vector<float>>> batched_rows(3);
  for (const auto& chunk : steps) {
    auto rows = run_step(*model_, kv, {&batched[0], &batched[1], &batched[2]}, chunk, free_blocks);
    size_t r = 0;
    for (int s = 0; s < 3; ++s)
      for (int j = 0; j < chunk[s]; ++j) batched_rows[s].push_back(rows[r++]);
  }
  for (int s = 0; s < 3; ++s) {
    std::vector<std::vector<float>> expected;
    KvCacheStorage own_kv = make_kv(model_->config(), 16);
    std::vector<int32_t> own_blocks = all_blocks(16);
    for (const auto& chunk : steps) {
      if (chunk[s] == 0) continue;
      auto rows = run_step(*model_, own_kv, {&alone[s]}, {chunk[s]}, own_blocks);
      expected.insert(expected.end(), rows.begin(), rows.end());
    }
    ASSERT_EQ(batched_rows[s].size(), expected.size());
    for (size_t t = 0; t < expected.size(); ++t) {
      EXPECT_LE(max_abs_diff(batched_rows[s][t], expected[t]), 1e-5f) << "sequence " << s << " token " << t;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, TinyLlamaTest,
                         ::testing::Values(TinySpec{.name = "llama_gqa2_llama3rope",
                                                    .architecture = "LlamaForCausalLM",
                                                    .model_type = "llama",
                                                    .llama3_rope = true},
                                           TinySpec{.name = "llama_mha_tied",
                                                    .architecture = "LlamaForCausalLM",
                                                    .model_type = "llama",
                                                    .kv_heads = 4,
                                                    .tie = true},
                                           TinySpec{.name = "qwen2_bias_gqa4",
                                                    .architecture = "Qwen2ForCausalLM",
                                                    .model_type = "qwen2",
                                                    .kv_heads = 1,
                                                    .tie = true,
                                                    .qkv_bias = true},
                                           TinySpec{.name = "qwen3_qknorm",
                                                    .architecture = "Qwen3ForCausalLM",
                                                    .model_type = "qwen3",
                                                    .head_dim = 16,
                                                    .qk_norm = true},
                                           TinySpec{.name = "mistral_window5",
                                                    .architecture = "MistralForCausalLM",
                                                    .model_type = "mistral",
                                                    .sliding_window = 5}),
                         [](const auto& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------
// Errors.

class LlamaModelErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(test_seed());
    spec_.name = "llama";
    spec_.architecture = "LlamaForCausalLM";
    spec_.model_type = "llama";
    weights_ = make_weights(spec_, rng);
  }
  TinySpec spec_;
  std::map<std::string, NamedTensor> weights_;
  TempDir dir_;
};

TEST_F(LlamaModelErrorsTest, MissingTensorIsNamed) {
  weights_.erase("model.layers.1.mlp.up_proj.weight");
  write_checkpoint(dir_.path(), spec_, weights_);
  auto config = load_model_config(dir_.path().string());
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  auto model = LlamaModel::load(dir_.path().string(), *config);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("model.layers.1.mlp.up_proj.weight"), std::string::npos)
      << model.status().to_string();
}

TEST_F(LlamaModelErrorsTest, WrongShapeIsReported) {
  weights_["model.layers.0.self_attn.k_proj.weight"].shape = {8, 64};  // same numel, wrong shape
  write_checkpoint(dir_.path(), spec_, weights_);
  auto config = load_model_config(dir_.path().string());
  ASSERT_TRUE(config.ok());
  auto model = LlamaModel::load(dir_.path().string(), *config);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("k_proj"), std::string::npos) << model.status().to_string();
}

TEST_F(LlamaModelErrorsTest, MissingLmHeadWhenUntied) {
  weights_.erase("lm_head.weight");
  write_checkpoint(dir_.path(), spec_, weights_);
  auto config = load_model_config(dir_.path().string());
  ASSERT_TRUE(config.ok());
  auto model = LlamaModel::load(dir_.path().string(), *config);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("lm_head.weight"), std::string::npos) << model.status().to_string();
}

TEST_F(LlamaModelErrorsTest, MalformedBatchesAreInvalidArguments) {
  write_checkpoint(dir_.path(), spec_, weights_);
  auto model = load_model(dir_.path());
  ASSERT_NE(model, nullptr);
  const ModelConfig& c = model->config();
  KvCacheStorage kv = make_kv(c, 8);
  auto good = [] {
    ForwardBatch b;
    b.token_ids = {3, 4, 5, 6, 7};
    b.positions = {0, 1, 2, 3, 4};
    b.query_start = {0, 3, 5};
    b.context_lens = {3, 2};
    b.block_tables = {{0}, {1}};
    b.logits_indices = {2, 4};
    return b;
  };
  std::vector<float> logits(2 * c.vocab_size);
  ASSERT_TRUE(model->forward(good(), kv, logits).ok());

  struct Case {
    const char* what;
    std::function<void(ForwardBatch&)> mutate;
  };
  const std::vector<Case> cases = {
      {"token id >= vocab", [&](ForwardBatch& b) { b.token_ids[1] = c.vocab_size; }},
      {"negative token id", [](ForwardBatch& b) { b.token_ids[0] = -1; }},
      {"positions size", [](ForwardBatch& b) { b.positions.pop_back(); }},
      {"query_start size", [](ForwardBatch& b) { b.query_start.pop_back(); }},
      {"query_start end", [](ForwardBatch& b) { b.query_start.back() = 4; }},
      {"empty sequence",
       [](ForwardBatch& b) {
         b.query_start = {0, 0, 5};
       }},
      {"context shorter than new tokens", [](ForwardBatch& b) { b.context_lens[0] = 2; }},
      {"block table too short", [](ForwardBatch& b) { b.context_lens[0] = 5; }},
      {"block id out of range", [](ForwardBatch& b) { b.block_tables[1][0] = 8; }},
      {"negative block id", [](ForwardBatch& b) { b.block_tables[0][0] = -1; }},
      {"missing block table", [](ForwardBatch& b) { b.block_tables.pop_back(); }},
      {"logits index out of range", [](ForwardBatch& b) { b.logits_indices[1] = 5; }},
      {"logits buffer size", [](ForwardBatch& b) { b.logits_indices.push_back(0); }},
  };
  for (const auto& tc : cases) {
    ForwardBatch b = good();
    tc.mutate(b);
    const Status st = model->forward(b, kv, logits);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << tc.what << ": " << st.to_string();
  }
  KvCacheStorage wrong_kv(c.num_layers + 1, 8, kBlockSize, c.num_kv_heads, c.head_dim);
  EXPECT_EQ(model->forward(good(), wrong_kv, logits).code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Golden checkpoints from transformers (scripts/ generator): last-token logits and greedy
// continuations.

struct GoldenPrompt {
  std::vector<int32_t> ids;
  std::vector<float> last_logits;
  std::vector<int32_t> greedy;
};

std::vector<fs::path> golden_model_dirs() {
  std::vector<fs::path> dirs;
  const fs::path root = fs::path(STRATA_SOURCE_DIR) / "tests/golden/models";
  if (!fs::is_directory(root)) return dirs;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (fs::exists(entry.path() / "golden.json")) dirs.push_back(entry.path());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

int32_t argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

TEST(LlamaModelGolden, CheckpointsArePresent) {
  if (golden_model_dirs().empty()) GTEST_SKIP() << "no golden checkpoints under tests/golden/models";
}

class LlamaModelGoldenTest : public ::testing::TestWithParam<fs::path> {};

TEST_P(LlamaModelGoldenTest, LastLogitsAndGreedyMatchTransformers) {
  const fs::path dir = GetParam();
  std::ifstream in(dir / "golden.json");
  const Json golden = Json::parse(in);
  auto model = load_model(dir);
  ASSERT_NE(model, nullptr);
  const int vocab = model->config().vocab_size;
  for (const auto& p : golden.at("prompts")) {
    const GoldenPrompt prompt{p.at("ids").get<std::vector<int32_t>>(), p.at("last_logits").get<std::vector<float>>(),
                              p.at("greedy").get<std::vector<int32_t>>()};
    SCOPED_TRACE("prompt of " + std::to_string(prompt.ids.size()) + " tokens");
    ASSERT_EQ(static_cast<int>(prompt.last_logits.size()), vocab);
    const int total = static_cast<int>(prompt.ids.size() + prompt.greedy.size());
    const int num_blocks = (total + kBlockSize - 1) / kBlockSize + 1;
    KvCacheStorage kv = make_kv(model->config(), num_blocks);
    std::vector<int32_t> free_blocks = all_blocks(num_blocks);
    SeqState seq{prompt.ids, 0, {}};
    // Prefill, then greedy decode one token per forward.
    auto rows = run_step(*model, kv, {&seq}, {static_cast<int>(prompt.ids.size())}, free_blocks);
    ASSERT_FALSE(rows.empty());
    const float diff = max_abs_diff(rows.back(), prompt.last_logits);
    EXPECT_LE(diff, 1e-4f);
    RecordProperty("max_abs_diff_prompt_" + std::to_string(prompt.ids.size()), std::to_string(diff));
    std::vector<int32_t> generated;
    std::vector<float> last = rows.back();
    for (size_t i = 0; i < prompt.greedy.size(); ++i) {
      const int32_t next = argmax(last);
      generated.push_back(next);
      if (i + 1 == prompt.greedy.size()) break;
      seq.tokens.push_back(next);
      last = run_step(*model, kv, {&seq}, {1}, free_blocks).back();
    }
    EXPECT_EQ(generated, prompt.greedy);
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, LlamaModelGoldenTest, ::testing::ValuesIn(golden_model_dirs()),
                         [](const auto& info) { return info.param.filename().string(); });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(LlamaModelGoldenTest);

}  // namespace
}  // namespace strata
