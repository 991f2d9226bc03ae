// Shared helpers for engine tests: golden checkpoints from transformers (tests/golden/models).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace strata::testing {

struct GoldenPrompt {
  std::vector<int32_t> ids;
  std::vector<float> last_logits;
  std::vector<int32_t> greedy;
};

struct GoldenModel {
  std::string name;
  std::string dir;
  std::vector<GoldenPrompt> prompts;
};

// The source tree: STRATA_SOURCE_DIR from the environment (a bundle run on another machine),
// else the one these tests were built from.
inline std::string golden_models_root() {
  const char* env = std::getenv("STRATA_SOURCE_DIR");
  return std::string(env != nullptr && *env != '\0' ? env : STRATA_SOURCE_DIR) + "/tests/golden/models";
}

// The device tests that are not about numbers run on: STRATA_TEST_DEVICE (cpu, cuda, cuda:N),
// cpu when unset. tests/bench/run_on_gpu.sh runs the soak with cuda.
inline std::string test_device() {
  const char* env = std::getenv("STRATA_TEST_DEVICE");
  return env != nullptr && *env != '\0' ? env : "cpu";
}

inline std::vector<GoldenModel> load_golden_models() {
  std::vector<GoldenModel> models;
  if (!std::filesystem::is_directory(golden_models_root())) return models;
  for (const auto& entry : std::filesystem::directory_iterator(golden_models_root())) {
    const auto golden_path = entry.path() / "golden.json";
    if (!std::filesystem::exists(golden_path)) continue;
    std::ifstream in(golden_path);
    const auto j = nlohmann::json::parse(in);
    GoldenModel m{entry.path().filename().string(), entry.path().string(), {}};
    for (const auto& p : j.at("prompts")) {
      m.prompts.push_back({p.at("ids").get<std::vector<int32_t>>(), p.at("last_logits").get<std::vector<float>>(),
                           p.at("greedy").get<std::vector<int32_t>>()});
    }
    models.push_back(std::move(m));
  }
  std::sort(models.begin(), models.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return models;
}

// A scratch copy of a golden model folder, removed when the test ends.
class ScratchModelDir {
 public:
  explicit ScratchModelDir(const std::string& source) {
    path_ = std::filesystem::temp_directory_path() /
            ("strata_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    std::filesystem::remove_all(path_);
    std::filesystem::copy(source, path_, std::filesystem::copy_options::recursive);
  }
  ~ScratchModelDir() { std::filesystem::remove_all(path_); }
  std::string path() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
  static inline int counter_ = 0;
};

#define STRATA_REQUIRE_GOLDEN(models)                                                           \
  if ((models).empty()) GTEST_SKIP() << "no golden checkpoints under " << ::strata::testing::golden_models_root() \
                                     << " (scripts/make_golden.py creates them)"

}  // namespace strata::testing
