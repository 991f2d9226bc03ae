// Tests configs/models/*/config.json: every preset parses with load_model_config, has the
// published shape, and LlamaModel's parameter count matches the published total within 1%.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <ostream>
#include <string>

#include "engine/model/llama_model.h"
#include "engine/model/model_config.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

struct Preset {
  std::string name;
  ModelArch arch;
  int hidden_size, num_layers, num_heads, num_kv_heads, head_dim, intermediate_size, vocab_size;
  float rope_theta;
  int max_position_embeddings;
  bool attention_bias, qk_norm, tie_word_embeddings;
  double published_params;  // model card / safetensors index totals
};

const Preset kPresets[] = {
    {"llama-3-8b", ModelArch::kLlama, 4096, 32, 32, 8, 128, 14336, 128256, 500000.0f, 8192, false, false, false,
     8.03e9},
    {"llama-3-70b", ModelArch::kLlama, 8192, 80, 64, 8, 128, 28672, 128256, 500000.0f, 8192, false, false, false,
     70.6e9},
    {"llama-3.1-8b", ModelArch::kLlama, 4096, 32, 32, 8, 128, 14336, 128256, 500000.0f, 131072, false, false, false,
     8.03e9},
    {"qwen2.5-7b", ModelArch::kQwen2, 3584, 28, 28, 4, 128, 18944, 152064, 1e6f, 131072, true, false, false, 7.62e9},
    {"qwen3-8b", ModelArch::kQwen3, 4096, 36, 32, 8, 128, 12288, 151936, 1e6f, 40960, false, true, false, 8.19e9},
};

void PrintTo(const Preset& p, std::ostream* os) { *os << p.name; }

fs::path preset_dir(const std::string& name) { return fs::path(STRATA_SOURCE_DIR) / "configs/models" / name; }

class ModelPresetTest : public ::testing::TestWithParam<Preset> {};

TEST_P(ModelPresetTest, ParsesWithThePublishedShapeAndParameterCount) {
  const Preset& p = GetParam();
  auto config = load_model_config(preset_dir(p.name).string());
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  const ModelConfig& c = *config;
  EXPECT_EQ(c.arch, p.arch);
  EXPECT_EQ(c.hidden_size, p.hidden_size);
  EXPECT_EQ(c.num_layers, p.num_layers);
  EXPECT_EQ(c.num_heads, p.num_heads);
  EXPECT_EQ(c.num_kv_heads, p.num_kv_heads);
  EXPECT_EQ(c.head_dim, p.head_dim);
  EXPECT_EQ(c.intermediate_size, p.intermediate_size);
  EXPECT_EQ(c.vocab_size, p.vocab_size);
  EXPECT_FLOAT_EQ(c.rope.theta, p.rope_theta);
  EXPECT_EQ(c.max_position_embeddings, p.max_position_embeddings);
  EXPECT_EQ(c.attention_bias, p.attention_bias);
  EXPECT_EQ(c.qk_norm, p.qk_norm);
  EXPECT_EQ(c.tie_word_embeddings, p.tie_word_embeddings);
  EXPECT_FALSE(c.sliding_window.has_value());
  const double params = static_cast<double>(llama_num_parameters(c));
  EXPECT_LT(std::fabs(params - p.published_params) / p.published_params, 0.01)
      << p.name << ": " << params << " parameters, published " << p.published_params;
}

INSTANTIATE_TEST_SUITE_P(Presets, ModelPresetTest, ::testing::ValuesIn(kPresets), [](const auto& info) {
  std::string name = info.param.name;
  for (char& ch : name) {
    if (ch == '-' || ch == '.') ch = '_';
  }
  return name;
});

TEST(ModelPresets, Llama31UsesLlama3RopeScaling) {
  auto config = load_model_config(preset_dir("llama-3.1-8b").string());
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  EXPECT_EQ(config->rope.type, "llama3");
  EXPECT_FLOAT_EQ(config->rope.factor, 8.0f);
  EXPECT_FLOAT_EQ(config->rope.low_freq_factor, 1.0f);
  EXPECT_FLOAT_EQ(config->rope.high_freq_factor, 4.0f);
  EXPECT_EQ(config->rope.original_max_position_embeddings, 8192);

  auto llama3 = load_model_config(preset_dir("llama-3-8b").string());
  ASSERT_TRUE(llama3.ok());
  EXPECT_EQ(llama3->rope.type, "default");
}

TEST(ModelPresets, EveryPresetFolderIsTested) {
  int folders = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(STRATA_SOURCE_DIR) / "configs/models")) {
    if (!entry.is_directory()) continue;
    ++folders;
    bool listed = false;
    for (const Preset& p : kPresets) listed = listed || p.name == entry.path().filename().string();
    EXPECT_TRUE(listed) << entry.path() << " has no entry in kPresets";
  }
  EXPECT_EQ(folders, static_cast<int>(std::size(kPresets)));
}

}  // namespace
}  // namespace strata
