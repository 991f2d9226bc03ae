// Tests the embedded default model (models/default) against transformers: the training script
// (scripts/train_default_model.py) recorded transformers' fp32 logits for three prompts into
// tests/golden/default_model/reference_logits.json on the GPU machine; strata's CPU backend
// must reproduce them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/model/forward_batch.h"
#include "engine/model/kv_cache_storage.h"
#include "engine/model/llama_model.h"
#include "engine/model/model_config.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

const fs::path kModelDir = fs::path(STRATA_SOURCE_DIR) / "models/default";
const fs::path kReference = fs::path(STRATA_SOURCE_DIR) / "tests/golden/default_model/reference_logits.json";
constexpr int kBlockSize = 16;

float max_abs_diff(std::span<const float> a, const std::vector<float>& b) {
  float worst = 0.0f;
  for (size_t i = 0; i < b.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

// Logits of every position of `ids`, one prefill forward.
std::vector<float> prefill_logits(LlamaModel& model, const std::vector<int32_t>& ids) {
  const ModelConfig& c = model.config();
  const int n = static_cast<int>(ids.size());
  const int num_blocks = (n + kBlockSize - 1) / kBlockSize;
  KvCacheStorage kv(c.num_layers, num_blocks, kBlockSize, c.num_kv_heads, c.head_dim);
  ForwardBatch batch;
  batch.token_ids = ids;
  for (int i = 0; i < n; ++i) batch.positions.push_back(i);
  batch.query_start = {0, n};
  batch.context_lens = {n};
  batch.block_tables.emplace_back();
  for (int b = 0; b < num_blocks; ++b) batch.block_tables[0].push_back(b);
  for (int i = 0; i < n; ++i) batch.logits_indices.push_back(i);
  std::vector<float> logits(static_cast<size_t>(n) * c.vocab_size);
  const Status st = model.forward(batch, kv, logits);
  EXPECT_TRUE(st.ok()) << st.to_string();
  return logits;
}

TEST(DefaultModel, LogitsMatchTransformers) {
  ASSERT_TRUE(fs::is_directory(kModelDir)) << kModelDir << " is missing";
  ASSERT_TRUE(fs::exists(kReference)) << kReference << " is missing";
  auto config = load_model_config(kModelDir.string());
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  auto model = LlamaModel::load(kModelDir.string(), *config);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const int vocab = config->vocab_size;

  std::ifstream in(kReference);
  const Json reference = Json::parse(in);
  ASSERT_GE(reference.at("prompts").size(), 3u);
  for (const auto& p : reference.at("prompts")) {
    const auto ids = p.at("ids").get<std::vector<int32_t>>();
    SCOPED_TRACE("prompt of " + std::to_string(ids.size()) + " tokens");
    const std::vector<float> logits = prefill_logits(**model, ids);
    auto row = [&](size_t i) { return std::span<const float>(logits).subspan(i * vocab, vocab); };

    // Last position: transformers' own logits (fp32, eager attention).
    const auto last = p.at("last_logits").get<std::vector<float>>();
    ASSERT_EQ(static_cast<int>(last.size()), vocab);
    EXPECT_LE(max_abs_diff(row(ids.size() - 1), last), 1e-4f);
    // Two inner positions: the trainer's fp32 logits (agree with transformers to ~1e-5).
    for (const auto& [pos, values] : p.at("rows_logits").items()) {
      EXPECT_LE(max_abs_diff(row(std::stoul(pos)), values.get<std::vector<float>>()), 1e-4f) << "position " << pos;
    }
    // Teacher-forced argmax at every position.
    const auto argmax_ref = p.at("all_argmax").get<std::vector<int32_t>>();
    ASSERT_EQ(argmax_ref.size(), ids.size());
    size_t same = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      const auto r = row(i);
      same += (std::max_element(r.begin(), r.end()) - r.begin()) == argmax_ref[i];
    }
    EXPECT_EQ(same, ids.size());
  }
}

}  // namespace
}  // namespace strata
