// Bad checkpoints and bad requests give clear errors, never a crash.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/engine_core.h"
#include "tests/engine/engine/golden_fixture.h"

namespace strata {
namespace {

using testing::ScratchModelDir;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// A golden model stored as a single model.safetensors file.
const testing::GoldenModel* single_file_model(const std::vector<testing::GoldenModel>& models) {
  for (const auto& m : models) {
    if (std::filesystem::exists(m.dir + "/model.safetensors")) return &m;
  }
  return nullptr;
}

class EngineErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    models_ = testing::load_golden_models();
    if (models_.empty()) GTEST_SKIP() << "no golden checkpoints under " << testing::golden_models_root();
    model_ = single_file_model(models_);
    if (!model_) GTEST_SKIP() << "no single-file golden checkpoint";
  }
  Status create_status(const std::string& dir) {
    EngineConfig cfg;
    cfg.model_dir = dir;
    auto core = EngineCore::create(cfg);
    return core.ok() ? Status::ok_status() : core.status();
  }
  std::vector<testing::GoldenModel> models_;
  const testing::GoldenModel* model_ = nullptr;
};

TEST_F(EngineErrors, TruncatedSafetensorsNamesTheFile) {
  ScratchModelDir dir(model_->dir);
  std::string bytes = read_file(dir.file("model.safetensors"));
  write_file(dir.file("model.safetensors"), bytes.substr(0, bytes.size() / 2));
  Status s = create_status(dir.path());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("model.safetensors"), std::string::npos) << s.message();
}

TEST_F(EngineErrors, CorruptHeaderNamesTheFile) {
  ScratchModelDir dir(model_->dir);
  std::string bytes = read_file(dir.file("model.safetensors"));
  std::memset(bytes.data() + 8, '#', 16);  // garbage inside the JSON header
  write_file(dir.file("model.safetensors"), bytes);
  Status s = create_status(dir.path());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("model.safetensors"), std::string::npos) << s.message();
}

TEST_F(EngineErrors, MissingTensorIsNamed) {
  ScratchModelDir dir(model_->dir);
  std::string bytes = read_file(dir.file("model.safetensors"));
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  auto header = nlohmann::json::parse(bytes.substr(8, header_len));
  const std::string victim = "model.layers.0.mlp.down_proj.weight";
  ASSERT_TRUE(header.contains(victim));
  header.erase(victim);
  std::string new_header = header.dump();
  new_header.resize(header_len, ' ');  // same length keeps every data offset valid
  write_file(dir.file("model.safetensors"), bytes.substr(0, 8) + new_header + bytes.substr(8 + header_len));
  Status s = create_status(dir.path());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(victim), std::string::npos) << s.message();
}

TEST_F(EngineErrors, UnknownArchitectureIsRejected) {
  ScratchModelDir dir(model_->dir);
  auto config = nlohmann::json::parse(read_file(dir.file("config.json")));
  config["architectures"] = {"GPTBigCodeForCausalLM"};
  write_file(dir.file("config.json"), config.dump());
  Status s = create_status(dir.path());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("GPTBigCodeForCausalLM"), std::string::npos) << s.message();
}

TEST_F(EngineErrors, MissingFolderIsNamed) {
  Status s = create_status("/nonexistent/strata/model");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent/strata/model"), std::string::npos) << s.message();
}

TEST_F(EngineErrors, PromptLongerThanTheContextWindowIsRejected) {
  EngineConfig cfg;
  cfg.model_dir = model_->dir;
  cfg.max_model_len = 64;
  auto core = EngineCore::create(cfg);
  ASSERT_TRUE(core.ok()) << core.status().to_string();
  EngineRequest r;
  r.prompt_ids.assign(64, 1);
  auto id = (*core)->add_request(r);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(id.status().message().find("64"), std::string::npos) << id.status().message();
  r.prompt_ids.assign(63, 1);
  EXPECT_TRUE((*core)->add_request(r).ok());
}

TEST_F(EngineErrors, BadRequestsAreRejectedWithTheField) {
  EngineConfig cfg;
  cfg.model_dir = model_->dir;
  auto core = EngineCore::create(cfg);
  ASSERT_TRUE(core.ok());
  EngineRequest empty;
  EXPECT_EQ((*core)->add_request(empty).status().code(), StatusCode::kInvalidArgument);
  EngineRequest out_of_vocab;
  out_of_vocab.prompt_ids = {(*core)->model_config().vocab_size};
  EXPECT_EQ((*core)->add_request(out_of_vocab).status().code(), StatusCode::kInvalidArgument);
  EngineRequest bad_top_p;
  bad_top_p.prompt_ids = {1};
  bad_top_p.params.top_p = 1.5f;
  auto s = (*core)->add_request(bad_top_p).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("top_p"), std::string::npos) << s.message();
}

TEST_F(EngineErrors, RequestLargerThanTheWholeCacheIsRejected) {
  EngineConfig cfg;
  cfg.model_dir = model_->dir;
  cfg.block_size = 16;
  cfg.num_kv_blocks = 2;
  auto core = EngineCore::create(cfg);
  ASSERT_TRUE(core.ok());
  EngineRequest r;
  r.prompt_ids.assign(20, 1);
  r.params.max_tokens = 20;
  EXPECT_EQ((*core)->add_request(r).status().code(), StatusCode::kResourceExhausted);
}

TEST_F(EngineErrors, HostMemoryPlanBeyondTheMachineIsRefusedWithTheNumbers) {
  EngineConfig cfg;
  cfg.model_dir = model_->dir;
  cfg.num_kv_blocks = INT32_MAX;  // terabytes of fp32 KV: refused before any allocation
  auto core = EngineCore::create(cfg);
  ASSERT_FALSE(core.ok());
  EXPECT_EQ(core.status().code(), StatusCode::kResourceExhausted);
  const std::string& m = core.status().message();
  EXPECT_NE(m.find("KV cache"), std::string::npos) << m;
  EXPECT_NE(m.find("MiB"), std::string::npos) << m;
  EXPECT_NE(m.find("available"), std::string::npos) << m;
  EXPECT_NE(m.find(std::to_string(INT32_MAX) + " KV blocks"), std::string::npos) << m;
}

}  // namespace
}  // namespace strata
