// Tests of the SentencePiece tokenizer on a small model trained by the test itself.
// Only this file includes sentencepiece_trainer.h (it clashes with abseil on Debian).
#include <gtest/gtest.h>
#include <sentencepiece_trainer.h>

#include <fstream>

#include "engine/tokenizer/tokenizer.h"
#include "tests/engine/tokenizer/tokenizer_test_util.h"

namespace strata::tokenizer {
namespace testing {

void train_tiny_sentencepiece(const std::filesystem::path& dir) {
  const std::filesystem::path corpus = dir / "corpus.txt";
  {
    std::ofstream out(corpus);
    const char* words[] = {"hello", "world", "the",    "quick",  "brown", "fox",   "jumps", "over",    "lazy",
                           "dog",   "token", "stream", "server", "model", "cache", "batch", "prefill", "decode"};
    for (int i = 0; i < 400; ++i) {
      for (int j = 0; j < 9; ++j) out << words[(i * 7 + j * 5) % 18] << (j % 4 == 3 ? ", " : " ");
      out << "caf\xC3\xA9 " << i << ".\n";
    }
  }
  const std::string args = "--input=" + corpus.string() + " --model_prefix=" + (dir / "tokenizer").string() +
                           " --vocab_size=420 --model_type=bpe --byte_fallback=true --character_coverage=1.0"
                           " --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 --split_digits=true"
                           " --normalization_rule_name=identity --remove_extra_whitespaces=false"
                           " --allow_whitespace_only_pieces=true --minloglevel=2";
  const auto status = sentencepiece::SentencePieceTrainer::Train(args);
  ASSERT_TRUE(status.ok()) << status.ToString();
  std::filesystem::remove(corpus);
  std::filesystem::remove(dir / "tokenizer.vocab");
}

}  // namespace testing
namespace {

using Ids = std::vector<int32_t>;

class SentencePieceTokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    testing::train_tiny_sentencepiece(dir_->path());
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  std::unique_ptr<Tokenizer> load(const std::string& config = "") {
    if (config.empty()) {
      std::filesystem::remove(dir_->path() / "tokenizer_config.json");
    } else {
      dir_->write("tokenizer_config.json", config);
    }
    auto tokenizer = load_tokenizer(dir_->str());
    EXPECT_TRUE(tokenizer.ok()) << tokenizer.status().message();
    return tokenizer.ok() ? std::move(tokenizer).value() : nullptr;
  }
  static testing::TempDir* dir_;
};
testing::TempDir* SentencePieceTokenizerTest::dir_ = nullptr;

TEST_F(SentencePieceTokenizerTest, AddsBosByDefault) {
  auto tok = load();
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->vocab_size(), 420);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  const Ids with = tok->encode("hello world", true);
  const Ids without = tok->encode("hello world", false);
  ASSERT_FALSE(with.empty());
  EXPECT_EQ(with[0], 1);
  EXPECT_EQ(Ids(with.begin() + 1, with.end()), without);
  EXPECT_EQ(tok->id_to_token(without[0]), "\xE2\x96\x81hello");
  EXPECT_EQ(tok->token_to_id("\xE2\x96\x81hello"), without[0]);
  EXPECT_EQ(tok->token_to_id("no-such-piece"), std::nullopt);
}

TEST_F(SentencePieceTokenizerTest, RoundTripsTextIncludingUnseenCharacters) {
  auto tok = load();
  ASSERT_TRUE(tok);
  for (const std::string text :
       {"hello world", "the quick, brown fox 123.", " two  spaces", "\xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80!"}) {
    EXPECT_EQ(tok->decode(tok->encode(text, true), true), text);
  }
  // Characters outside the model become <0xXX> byte pieces.
  const Ids emoji = tok->encode("\xF0\x9F\x98\x80", false);
  EXPECT_EQ(tok->id_to_token(emoji.back()), "<0x80>");
}

TEST_F(SentencePieceTokenizerTest, ConfigControlsBosAndEos) {
  auto tok =
      load(R"({"add_bos_token": false, "add_eos_token": true, "bos_token": {"content": "<s>"}, "eos_token": "</s>",
                      "chat_template": "{{ bos_token }}"})");
  ASSERT_TRUE(tok);
  const Ids ids = tok->encode("hello", true);
  ASSERT_FALSE(ids.empty());
  EXPECT_NE(ids.front(), 1);
  EXPECT_EQ(ids.back(), 2);
  EXPECT_EQ(tok->chat_template(), "{{ bos_token }}");
}

TEST_F(SentencePieceTokenizerTest, ControlTokenTextIsPlainText) {
  // As sentencepiece (and the golden reference) does: "<s>" in the text is not BOS.
  auto tok = load();
  ASSERT_TRUE(tok);
  const Ids ids = tok->encode("<s>hello</s>", false);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 1), 0);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 2), 0);
  EXPECT_EQ(tok->decode(ids, true), "<s>hello</s>");
}

TEST_F(SentencePieceTokenizerTest, DecodeShowsOrSkipsSpecialTokens) {
  auto tok = load();
  ASSERT_TRUE(tok);
  EXPECT_TRUE(tok->is_special(0));  // <unk>
  EXPECT_TRUE(tok->is_special(1));
  EXPECT_TRUE(tok->is_special(2));
  Ids ids = {1};
  const Ids hello = tok->encode("hello", false);
  const Ids world = tok->encode(" world", false);
  ids.insert(ids.end(), hello.begin(), hello.end());
  ids.push_back(2);
  ids.insert(ids.end(), world.begin(), world.end());
  EXPECT_FALSE(tok->is_special(ids[1]));
  EXPECT_EQ(tok->decode(ids, true), "hello  world");
  EXPECT_EQ(tok->decode(ids, false), "<s>hello</s>  world");
}

// tokenizer_config.json's added_tokens_decoder: <s>, </s> and a chat token beyond the
// SentencePiece vocabulary, as transformers' LlamaTokenizer splits them out of the input.
constexpr const char* kAddedTokensConfig = R"({
  "added_tokens_decoder": {
    "1": {"content": "<s>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true},
    "2": {"content": "</s>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true},
    "420": {"content": "<|user|>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true}
  }
})";

TEST_F(SentencePieceTokenizerTest, AddedTokensAreSplitOutAndChunksEncodedAlone) {
  auto tok = load(kAddedTokensConfig);
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->vocab_size(), 421);  // the added token past the model's 420 pieces
  EXPECT_EQ(tok->token_to_id("<|user|>"), 420);
  EXPECT_EQ(tok->id_to_token(420), "<|user|>");
  EXPECT_TRUE(tok->is_special(420));
  const Ids hello = tok->encode("hello", false);
  const Ids world = tok->encode("world", false);
  Ids expected = {1, 420};
  expected.insert(expected.end(), hello.begin(), hello.end());
  expected.push_back(2);
  expected.insert(expected.end(), world.begin(), world.end());  // its own dummy prefix
  EXPECT_EQ(tok->encode("<s><|user|>hello</s>world", false), expected);
  EXPECT_EQ(tok->decode(expected, false), "<s><|user|>hello</s> world");
  EXPECT_EQ(tok->decode(expected, true), "hello world");
}

TEST_F(SentencePieceTokenizerTest, AddedTokensDecoderErrorsNameTheField) {
  for (const char* config : {R"({"added_tokens_decoder": []})", R"({"added_tokens_decoder": {"x": {"content": "a"}}})",
                             R"({"added_tokens_decoder": {"5": {"special": true}}})"}) {
    dir_->write("tokenizer_config.json", config);
    auto tokenizer = load_tokenizer(dir_->str());
    ASSERT_FALSE(tokenizer.ok()) << config;
    EXPECT_NE(tokenizer.status().message().find("added_tokens_decoder"), std::string::npos)
        << tokenizer.status().message();
  }
}

}  // namespace
}  // namespace strata::tokenizer
