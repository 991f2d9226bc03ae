// Tests `--load-format dummy` (engine/model/dummy_weights.cpp and LlamaModel::load with
// LoadFormat::kDummy): folders holding only a config.json written by the test, one per
// Llama-family variant, give finite, seed-deterministic logits without any weight file.
#include "engine/model/dummy_weights.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <ostream>
#include <string>
#include <vector>

#include "engine/model/llama_model.h"
#include "engine/model/load_format.h"
#include "engine/model/model_config.h"
#include "tests/temp_dir.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

using testing::TempDir;

struct Variant {
  std::string name;
  Json config;
};

void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

Json base_config(const std::string& architecture) {
  return {{"architectures", {architecture}},
          {"hidden_size", 64},
          {"intermediate_size", 160},
          {"num_hidden_layers", 3},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"vocab_size", 300},
          {"max_position_embeddings", 128},
          {"rms_norm_eps", 1e-6},
          {"tie_word_embeddings", false}};
}

std::vector<Variant> variants() {
  std::vector<Variant> v;
  v.push_back({"Llama", base_config("LlamaForCausalLM")});
  Json llama_bias = base_config("LlamaForCausalLM");
  llama_bias["attention_bias"] = true;  // q/k/v and o_proj biases
  llama_bias["tie_word_embeddings"] = true;
  llama_bias["rope_scaling"] = {{"rope_type", "llama3"},
                                {"factor", 8.0},
                                {"low_freq_factor", 1.0},
                                {"high_freq_factor", 4.0},
                                {"original_max_position_embeddings", 64}};
  v.push_back({"LlamaTiedBiasRopeLlama3", llama_bias});
  Json mistral = base_config("MistralForCausalLM");
  mistral["sliding_window"] = 4;
  v.push_back({"Mistral", mistral});
  Json qwen2 = base_config("Qwen2ForCausalLM");  // q/k/v biases, no o_proj bias
  qwen2["rope_theta"] = 1e6;
  v.push_back({"Qwen2", qwen2});
  Json qwen3 = base_config("Qwen3ForCausalLM");  // q/k norms, head_dim decoupled from hidden
  qwen3["head_dim"] = 32;
  qwen3["tie_word_embeddings"] = true;
  v.push_back({"Qwen3", qwen3});
  return v;
}

void write_config(const fs::path& dir, const Json& config) {
  std::ofstream out(dir / "config.json");
  out << config.dump(2);
  ASSERT_TRUE(out.good());
}

Result<std::unique_ptr<LlamaModel>> load_dummy(const std::string& dir, uint64_t seed = 0) {
  STRATA_ASSIGN_OR_RETURN(ModelConfig config, load_model_config(dir));
  return LlamaModel::load(dir, config, {.format = LoadFormat::kDummy, .dummy_seed = seed});
}

constexpr int kBlockSize = 4;

// Prefills `prompt` in one step, then decodes `num_decode` greedy tokens one per step; returns
// every row of logits the steps produced (prompt rows first).
std::vector<std::vector<float>> prefill_and_decode(LlamaModel& model, std::vector<int32_t> tokens, int num_decode) {
  const ModelConfig& c = model.config();
  const int num_blocks = 16;
  KvCacheStorage kv(c.num_layers, num_blocks, kBlockSize, c.num_kv_heads, c.head_dim);
  std::vector<int32_t> block_table(num_blocks);
  std::iota(block_table.begin(), block_table.end(), 0);
  std::vector<std::vector<float>> rows;
  int num_computed = 0;
  for (int step = 0; step <= num_decode; ++step) {
    ForwardBatch batch;
    for (int t = num_computed; t < static_cast<int>(tokens.size()); ++t) {
      batch.token_ids.push_back(tokens[t]);
      batch.positions.push_back(t);
      batch.logits_indices.push_back(t - num_computed);
    }
    batch.query_start = {0, batch.num_tokens()};
    batch.context_lens = {static_cast<int32_t>(tokens.size())};
    batch.block_tables = {block_table};
    std::vector<float> logits(batch.logits_indices.size() * c.vocab_size);
    const Status st = model.forward(batch, kv, logits);
    EXPECT_TRUE(st.ok()) << st.to_string();
    if (!st.ok()) return rows;
    num_computed = static_cast<int>(tokens.size());
    for (size_t r = 0; r < batch.logits_indices.size(); ++r) {
      rows.emplace_back(logits.begin() + r * c.vocab_size, logits.begin() + (r + 1) * c.vocab_size);
    }
    const auto& last = rows.back();
    tokens.push_back(static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin()));
  }
  return rows;
}

class DummyWeightsTest : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override { write_config(dir_.path(), GetParam().config); }
  TempDir dir_;
};

TEST_P(DummyWeightsTest, LoadsFromConfigAloneWithFiniteLogits) {
  ASSERT_FALSE(fs::is_empty(dir_.path()));
  for (const auto& entry : fs::directory_iterator(dir_.path())) {
    ASSERT_EQ(entry.path().filename(), "config.json") << "the folder must hold only config.json";
  }
  auto model = load_dummy(dir_.str());
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  EXPECT_EQ((*model)->weight_bytes(), static_cast<size_t>(llama_num_parameters((*model)->config())) * sizeof(float));

  const auto rows = prefill_and_decode(**model, {1, 17, 42, 99, 250, 3, 7}, 6);
  ASSERT_EQ(rows.size(), 7u + 6u);
  for (size_t r = 0; r < rows.size(); ++r) {
    float lo = rows[r][0], hi = rows[r][0];
    for (float x : rows[r]) {
      ASSERT_TRUE(std::isfinite(x)) << "row " << r;
      lo = std::min(lo, x);
      hi = std::max(hi, x);
    }
    EXPECT_GT(hi - lo, 1e-4f) << "row " << r << " is flat: the dummy weights carry no signal";
  }
}

TEST_P(DummyWeightsTest, SameSeedGivesIdenticalLogitsAcrossLoads) {
  auto a = load_dummy(dir_.str());
  auto b = load_dummy(dir_.str());
  auto other_seed = load_dummy(dir_.str(), 1);
  ASSERT_TRUE(a.ok() && b.ok() && other_seed.ok());
  const std::vector<int32_t> prompt = {5, 6, 7, 8, 9};
  const auto rows_a = prefill_and_decode(**a, prompt, 3);
  const auto rows_b = prefill_and_decode(**b, prompt, 3);
  EXPECT_EQ(rows_a, rows_b);
  EXPECT_NE(rows_a, prefill_and_decode(**other_seed, prompt, 3));
}

TEST_P(DummyWeightsTest, SafetensorsFormatStillNeedsTheWeightFiles) {
  auto config = load_model_config(dir_.str());
  ASSERT_TRUE(config.ok());
  for (LoadFormat format : {LoadFormat::kAuto, LoadFormat::kSafetensors}) {
    auto model = LlamaModel::load(dir_.str(), *config, {.format = format});
    ASSERT_FALSE(model.ok()) << load_format_name(format);
    EXPECT_NE(model.status().message().find(dir_.str()), std::string::npos) << model.status().message();
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, DummyWeightsTest, ::testing::ValuesIn(variants()),
                         [](const auto& info) { return info.param.name; });

TEST(DummyWeights, ManyLayersStayFinite) {
  TempDir dir;
  Json config = base_config("LlamaForCausalLM");
  config["num_hidden_layers"] = 64;
  config["hidden_size"] = 256;
  config["intermediate_size"] = 688;
  config["num_attention_heads"] = 8;
  config["num_key_value_heads"] = 8;
  write_config(dir.path(), config);
  auto model = load_dummy(dir.str());
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  for (const auto& row : prefill_and_decode(**model, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 4)) {
    for (float x : row) ASSERT_TRUE(std::isfinite(x));
  }
}

TEST(DummyWeights, TensorValuesAreScaledAndDeterministic) {
  std::vector<float> norm, w, w_again, other;
  fill_dummy_tensor("model.layers.0.input_layernorm.weight", 0, 64, norm);
  EXPECT_EQ(norm, std::vector<float>(64, 1.0f));
  fill_dummy_tensor("model.layers.0.self_attn.q_norm.weight", 0, 8, norm);
  EXPECT_EQ(norm, std::vector<float>(8, 1.0f));

  const size_t n = 1 << 16;
  fill_dummy_tensor("model.layers.0.mlp.down_proj.weight", 0, n, w);
  fill_dummy_tensor("model.layers.0.mlp.down_proj.weight", 0, n, w_again);
  fill_dummy_tensor("model.layers.1.mlp.down_proj.weight", 0, n, other);
  EXPECT_EQ(w, w_again);
  EXPECT_NE(w, other);
  double sum = 0, sum_sq = 0, max_abs = 0;
  for (float x : w) {
    sum += x;
    sum_sq += static_cast<double>(x) * x;
    max_abs = std::max(max_abs, static_cast<double>(std::fabs(x)));
  }
  const double mean = sum / n;
  const double std_dev = std::sqrt(sum_sq / n - mean * mean);
  EXPECT_NEAR(mean, 0.0, 1e-3);
  EXPECT_NEAR(std_dev, kDummyWeightStd, 1e-3);
  EXPECT_LE(max_abs, 3.5 * kDummyWeightStd);
}

TEST(DummyWeights, TooLargeForMemoryIsResourceExhaustedWithTheNumbers) {
  TempDir dir;
  Json config = base_config("LlamaForCausalLM");
  config["vocab_size"] = 1 << 30;  // 2^30 x 2^20 embeddings alone: 4 PiB of fp32
  config["hidden_size"] = 1 << 20;
  config["num_attention_heads"] = 1 << 13;
  config["num_key_value_heads"] = 1 << 13;
  write_config(dir.path(), config);
  auto model = load_dummy(dir.str());
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kResourceExhausted);
  const std::string& message = model.status().message();
  EXPECT_NE(message.find("dummy weights"), std::string::npos) << message;
  EXPECT_NE(message.find("GiB"), std::string::npos) << message;
  EXPECT_NE(message.find("parameters"), std::string::npos) << message;
}

TEST(LoadFormat, ParsesEveryNameAndRejectsOthers) {
  for (LoadFormat f : {LoadFormat::kAuto, LoadFormat::kSafetensors, LoadFormat::kDummy}) {
    auto parsed = parse_load_format(load_format_name(f));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, f);
  }
  auto bad = parse_load_format("pt");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("'pt'"), std::string::npos);
  EXPECT_NE(bad.status().message().find("auto, safetensors, dummy"), std::string::npos);
}

}  // namespace
}  // namespace strata
