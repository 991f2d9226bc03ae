// Golden tests: every tests/golden/tokenizers/<name>/ with an expected.json (made by
// scripts/make_golden.py from transformers / sentencepiece) must be reproduced exactly.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/utf8.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Ids = std::vector<int32_t>;

const fs::path kGoldenRoot = fs::path(STRATA_SOURCE_DIR) / "tests" / "golden" / "tokenizers";

// The tokenizers make_golden.py writes, plus any other folder that is there now.
std::vector<std::string> golden_names() {
  std::vector<std::string> names = {"sp_llama", "bpe_llama3", "bpe_qwen2", "bpe_sp_style"};
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(kGoldenRoot, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return names;
}

class GoldenTokenizer : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = kGoldenRoot / GetParam();
    if (!fs::exists(dir_ / "expected.json")) {
      GTEST_SKIP() << dir_.string() << "/expected.json does not exist (run scripts/make_golden.py)";
    }
    std::ifstream in(dir_ / "expected.json");
    expected_ = json::parse(in);
    auto tokenizer = load_tokenizer(dir_.string());
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().to_string();
    tokenizer_ = std::move(tokenizer).value();
  }

  fs::path dir_;
  json expected_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

std::optional<int32_t> optional_id(const json& value) {
  if (value.is_null()) return std::nullopt;
  return value.get<int32_t>();
}

TEST_P(GoldenTokenizer, VocabSizeAndSpecialIds) {
  EXPECT_EQ(tokenizer_->vocab_size(), expected_["vocab_size"].get<int32_t>());
  EXPECT_EQ(tokenizer_->bos_id(), optional_id(expected_["bos_id"]));
  EXPECT_EQ(tokenizer_->eos_id(), optional_id(expected_["eos_id"]));
}

TEST_P(GoldenTokenizer, EncodeAndDecodeMatchReference) {
  int passed = 0;
  const auto& cases = expected_["cases"];
  for (size_t i = 0; i < cases.size(); ++i) {
    const json& c = cases[i];
    const std::string text = c["text"].get<std::string>();
    SCOPED_TRACE("case " + std::to_string(i) + ": " + c["text"].dump());
    const Ids ids = tokenizer_->encode(text, true);
    const Ids ids_plain = tokenizer_->encode(text, false);
    const std::string decoded = tokenizer_->decode(c["ids_plain"].get<Ids>(), false);
    const std::string decoded_skip = tokenizer_->decode(c["ids"].get<Ids>(), true);
    EXPECT_EQ(ids, c["ids"].get<Ids>());
    EXPECT_EQ(ids_plain, c["ids_plain"].get<Ids>());
    EXPECT_EQ(decoded, c["decoded"].get<std::string>());
    EXPECT_EQ(decoded_skip, c["decoded_skip"].get<std::string>());
    passed += ids == c["ids"].get<Ids>() && ids_plain == c["ids_plain"].get<Ids>() &&
              decoded == c["decoded"].get<std::string>() && decoded_skip == c["decoded_skip"].get<std::string>();
  }
  std::cout << "[ golden   ] " << GetParam() << ": " << passed << "/" << cases.size() << " cases match\n";
}

TEST_P(GoldenTokenizer, ChatCasesTokenizeLikeReference) {
  if (!expected_.contains("chat_cases")) GTEST_SKIP() << "no chat_cases for " << GetParam();
  EXPECT_FALSE(tokenizer_->chat_template().empty());
  for (const json& c : expected_["chat_cases"]) {
    if (!c.contains("rendered")) continue;  // the template raised an error for these messages
    // The rendered prompt already holds its special tokens.
    EXPECT_EQ(tokenizer_->encode(c["rendered"].get<std::string>(), false), c["ids"].get<Ids>()) << c["rendered"].dump();
  }
}

TEST_P(GoldenTokenizer, IncrementalDeltasConcatenateToFullDecode) {
  for (const json& c : expected_["cases"]) {
    const Ids ids = c["ids"].get<Ids>();
    for (const bool skip : {true, false}) {
      IncrementalDetokenizer detokenizer(*tokenizer_, {}, skip);
      std::string streamed;
      for (const int32_t id : ids) {
        const std::string delta = detokenizer.push(id);
        EXPECT_TRUE(tokenizer::is_valid_utf8(delta)) << c["text"].dump();
        streamed += delta;
      }
      streamed += detokenizer.flush();
      EXPECT_EQ(streamed, tokenizer_->decode(ids, skip)) << c["text"].dump() << " skip=" << skip;
    }
  }
}

TEST_P(GoldenTokenizer, IncrementalAfterPromptMatchesDecodeOfTheWhole) {
  // Every case streamed after the first case as a prompt.
  const Ids prompt = expected_["cases"][0]["ids"].get<Ids>();
  const std::string prompt_text = tokenizer_->decode(prompt, true);
  for (const json& c : expected_["cases"]) {
    const Ids generated = c["ids_plain"].get<Ids>();
    IncrementalDetokenizer detokenizer(*tokenizer_, prompt, true);
    std::string streamed;
    for (const int32_t id : generated) streamed += detokenizer.push(id);
    streamed += detokenizer.flush();
    Ids all = prompt;
    all.insert(all.end(), generated.begin(), generated.end());
    const std::string whole = tokenizer_->decode(all, true);
    ASSERT_EQ(whole.compare(0, prompt_text.size(), prompt_text), 0);
    EXPECT_EQ(streamed, whole.substr(prompt_text.size())) << c["text"].dump();
  }
}

TEST_P(GoldenTokenizer, LongPromptEncodesWellUnderASecond) {
  std::string text;
  for (const json& c : expected_["cases"]) text += c["text"].get<std::string>() + "\n";
  std::string long_text;
  while (long_text.size() < 100000) long_text += text;
  const auto start = std::chrono::steady_clock::now();
  const Ids ids = tokenizer_->encode(long_text, true);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "[ golden   ] " << GetParam() << ": " << ids.size() << " tokens (" << long_text.size() << " bytes) in "
            << seconds * 1000 << " ms\n";
  EXPECT_GE(ids.size(), 16000u);
  EXPECT_LT(seconds, 1.0);
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, GoldenTokenizer, ::testing::ValuesIn(golden_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace strata
