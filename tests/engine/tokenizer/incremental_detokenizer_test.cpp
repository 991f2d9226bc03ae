// Tests of IncrementalDetokenizer on fixture tokenizers: deltas concatenate to the full decode,
// never split a UTF-8 character, and keep SentencePiece's leading spaces.
#include <gtest/gtest.h>

#include <random>

#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/utf8.h"
#include "tests/engine/tokenizer/tokenizer_test_util.h"

namespace strata::tokenizer {
namespace {

using Ids = std::vector<int32_t>;

const std::vector<std::string> kTexts = {
    "hello world",
    "the quick, brown fox 123.",
    "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C",  // 你好，世界
    "emoji \xF0\x9F\x98\x80\xF0\x9F\x8E\x89 and \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9 family",
    "  leading and trailing  ",
    "line\n\n\ttab",
};

std::vector<std::string> stream(const Tokenizer& tok, const Ids& prompt, const Ids& generated, bool skip = true) {
  IncrementalDetokenizer detokenizer(tok, prompt, skip);
  std::vector<std::string> deltas;
  for (const int32_t id : generated) deltas.push_back(detokenizer.push(id));
  deltas.push_back(detokenizer.flush());
  return deltas;
}

std::string join(const std::vector<std::string>& deltas) {
  std::string out;
  for (const auto& d : deltas) out += d;
  return out;
}

void expect_streams_like_decode(const Tokenizer& tok) {
  for (const std::string& text : kTexts) {
    const Ids ids = tok.encode(text, true);
    const auto deltas = stream(tok, {}, ids);
    for (const auto& d : deltas) EXPECT_TRUE(is_valid_utf8(d)) << text;
    EXPECT_EQ(join(deltas), tok.decode(ids, true)) << text;
    EXPECT_EQ(join(deltas), text);
  }
}

std::unique_ptr<Tokenizer> load_dir(const testing::TempDir& dir) {
  auto tokenizer = load_tokenizer(dir.str());
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status().message();
  return tokenizer.ok() ? std::move(tokenizer).value() : nullptr;
}

TEST(IncrementalDetokenizer, ByteLevelBpeStreamsLikeDecode) {
  testing::TempDir dir;
  dir.write("tokenizer.json", testing::byte_level_bpe_json({{"h", "e"}, {"l", "l"}, {"he", "ll"}}).dump());
  auto tok = load_dir(dir);
  ASSERT_TRUE(tok);
  expect_streams_like_decode(*tok);
}

TEST(IncrementalDetokenizer, SentencePieceStreamsLikeDecode) {
  testing::TempDir dir;
  testing::train_tiny_sentencepiece(dir.path());
  auto tok = load_dir(dir);
  ASSERT_TRUE(tok);
  expect_streams_like_decode(*tok);
}

TEST(IncrementalDetokenizer, HoldsBackIncompleteCharacters) {
  testing::TempDir dir;
  dir.write("tokenizer.json", testing::byte_level_bpe_json({}).dump());
  auto tok = load_dir(dir);
  ASSERT_TRUE(tok);
  const Ids ids = tok->encode("\xF0\x9F\x98\x80!", false);  // 😀 is four byte tokens
  ASSERT_EQ(ids.size(), 5u);
  const auto deltas = stream(*tok, {}, ids);
  EXPECT_EQ(deltas, (std::vector<std::string>{"", "", "", "\xF0\x9F\x98\x80", "!", ""}));
}

TEST(IncrementalDetokenizer, FlushReplacesAnIncompleteTail) {
  testing::TempDir dir;
  dir.write("tokenizer.json", testing::byte_level_bpe_json({}).dump());
  auto tok = load_dir(dir);
  ASSERT_TRUE(tok);
  Ids ids = tok->encode("a\xF0\x9F\x98\x80", false);
  ids.pop_back();  // cut the emoji short
  const auto deltas = stream(*tok, {}, ids);
  EXPECT_EQ(join(deltas), "a\xEF\xBF\xBD");
  EXPECT_EQ(deltas.back(), "\xEF\xBF\xBD");
}

TEST(IncrementalDetokenizer, SentencePieceKeepsSpaceAfterPrompt) {
  testing::TempDir dir;
  testing::train_tiny_sentencepiece(dir.path());
  auto tok = load_dir(dir);
  ASSERT_TRUE(tok);
  const Ids prompt = tok->encode("the quick", true);
  const Ids generated = tok->encode("brown fox", false);  // "▁brown", ... : a leading space in context
  EXPECT_EQ(join(stream(*tok, prompt, generated)), " brown fox");
}

TEST(IncrementalDetokenizer, SkipsOrShowsSpecialTokens) {
  testing::TempDir dir;
  dir.write(
      "tokenizer.json",
      testing::byte_level_bpe_json({}, nlohmann::json::array({testing::added_token(300, "<|eot|>", true)})).dump());
  auto tok = load_dir(dir);
  ASSERT_TRUE(tok);
  const Ids ids = tok->encode("hi<|eot|>", false);
  EXPECT_EQ(join(stream(*tok, {}, ids, /*skip=*/true)), "hi");
  EXPECT_EQ(join(stream(*tok, {}, ids, /*skip=*/false)), "hi<|eot|>");
}

TEST(IncrementalDetokenizer, RandomIdsStreamLikeDecode) {
  // Random byte tokens make broken UTF-8 anywhere in the stream, after a random prompt.
  testing::TempDir dir;
  dir.write("tokenizer.json", testing::byte_level_bpe_json({{"h", "e"}, {"l", "l"}}).dump());
  auto tok = load_dir(dir);
  ASSERT_TRUE(tok);
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  // Mostly multi-byte lead and continuation bytes, some ASCII.
  std::uniform_int_distribution<int> byte(0x20, 0xFF);
  for (int round = 0; round < 200; ++round) {
    Ids prompt(rng() % 8), generated(1 + rng() % 24);
    for (auto& id : prompt) id = byte(rng);
    for (auto& id : generated) id = byte(rng);
    const auto deltas = stream(*tok, prompt, generated, true);
    for (const auto& d : deltas) ASSERT_TRUE(is_valid_utf8(d));
    Ids all = prompt;
    all.insert(all.end(), generated.begin(), generated.end());
    // Without a prompt the stream is exactly the decode; after one, the decode's tail.
    EXPECT_EQ(join(stream(*tok, {}, all, true)), tok->decode(all, true));
  }
}

}  // namespace
}  // namespace strata::tokenizer
