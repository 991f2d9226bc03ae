// Tests of the BPE model: merge order, byte fallback, unk handling, ignore_merges, parsing.
#include "engine/tokenizer/bpe_model.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace strata::tokenizer {
namespace {

using Ids = std::vector<int32_t>;
using Merges = std::vector<std::pair<std::string, std::string>>;

std::unique_ptr<BpeModel> make_model(StringMap<int32_t> vocab, Merges merges, BpeOptions options = {}) {
  auto model = BpeModel::create(std::move(vocab), std::move(merges), std::move(options), "tokenizer.json: model");
  EXPECT_TRUE(model.ok()) << model.status().message();
  return model.ok() ? std::move(model).value() : nullptr;
}

Ids tokenize(const BpeModel& model, std::string_view word) {
  Ids ids;
  model.tokenize(word, ids);
  return ids;
}

TEST(BpeModel, LowerRankMergesFirst) {
  StringMap<int32_t> vocab{{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"bc", 4}};
  auto bc_first = make_model(vocab, {{"b", "c"}, {"a", "b"}});
  EXPECT_EQ(tokenize(*bc_first, "abc"), (Ids{0, 4}));
  auto ab_first = make_model(vocab, {{"a", "b"}, {"b", "c"}});
  EXPECT_EQ(tokenize(*ab_first, "abc"), (Ids{3, 2}));
}

TEST(BpeModel, EqualRanksMergeLeftmostFirst) {
  auto model = make_model({{"a", 0}, {"aa", 1}}, {{"a", "a"}});
  EXPECT_EQ(tokenize(*model, "aaa"), (Ids{1, 0}));
  EXPECT_EQ(tokenize(*model, "aaaa"), (Ids{1, 1}));
}

TEST(BpeModel, MergesChainIntoLongerTokens) {
  auto model =
      make_model({{"l", 0}, {"o", 1}, {"w", 2}, {"lo", 3}, {"low", 4}, {"e", 5}, {"r", 6}, {"er", 7}, {"lower", 8}},
                 {{"l", "o"}, {"lo", "w"}, {"e", "r"}, {"low", "er"}});
  EXPECT_EQ(tokenize(*model, "lower"), (Ids{8}));
  EXPECT_EQ(tokenize(*model, "lowlow"), (Ids{4, 4}));
  // The cache returns the same answer the second time.
  EXPECT_EQ(tokenize(*model, "lower"), (Ids{8}));
}

TEST(BpeModel, ByteFallbackForUnknownCharacters) {
  StringMap<int32_t> vocab{{"<unk>", 0}, {"a", 1}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab[name] = 2 + b;
  }
  BpeOptions options;
  options.byte_fallback = true;
  options.unk_token = "<unk>";
  auto model = make_model(vocab, {}, options);
  // "é" is C3 A9.
  EXPECT_EQ(tokenize(*model, "a\xC3\xA9"), (Ids{1, 2 + 0xC3, 2 + 0xA9}));
}

TEST(BpeModel, UnknownCharactersBecomeUnkAndFuse) {
  StringMap<int32_t> vocab{{"<unk>", 0}, {"a", 1}};
  BpeOptions options;
  options.unk_token = "<unk>";
  auto separate = make_model(vocab, {}, options);
  EXPECT_EQ(tokenize(*separate, "xya"), (Ids{0, 0, 1}));
  options.fuse_unk = true;
  auto fused = make_model(vocab, {}, options);
  EXPECT_EQ(tokenize(*fused, "xya"), (Ids{0, 1}));
  EXPECT_EQ(tokenize(*fused, "axy"), (Ids{1, 0}));
}

TEST(BpeModel, WithoutUnkUnknownCharactersAreDropped) {
  auto model = make_model({{"a", 0}}, {});
  EXPECT_EQ(tokenize(*model, "xa"), (Ids{0}));
}

TEST(BpeModel, IgnoreMergesEmitsWholeVocabWords) {
  // "abc" is in the vocab but no merge sequence reaches it.
  StringMap<int32_t> vocab{{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"abc", 4}};
  auto merging = make_model(vocab, {{"a", "b"}});
  EXPECT_EQ(tokenize(*merging, "abc"), (Ids{3, 2}));
  BpeOptions options;
  options.ignore_merges = true;
  auto ignoring = make_model(vocab, {{"a", "b"}}, options);
  EXPECT_EQ(tokenize(*ignoring, "abc"), (Ids{4}));
  EXPECT_EQ(tokenize(*ignoring, "abcab"), (Ids{3, 2, 3}));
}

TEST(BpeModel, LongWordIsFast) {
  auto model = make_model({{"a", 0}, {"b", 1}, {"ab", 2}, {"abab", 3}}, {{"a", "b"}, {"ab", "ab"}});
  std::string word;
  for (int i = 0; i < 50000; ++i) word += "ab";
  const Ids ids = tokenize(*model, word);
  ASSERT_EQ(ids.size(), 25000u);
  EXPECT_EQ(ids.front(), 3);
}

TEST(BpeModel, ParsesBothMergeFormats) {
  const auto vocab = nlohmann::json{{"a", 0}, {"b", 1}, {"ab", 2}};
  for (const auto& merges :
       {nlohmann::json::array({"a b"}), nlohmann::json::array({nlohmann::json::array({"a", "b"})})}) {
    const nlohmann::json spec = {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}};
    auto model = BpeModel::parse(spec, "tokenizer.json: model");
    ASSERT_TRUE(model.ok()) << model.status().message();
    EXPECT_EQ(tokenize(**model, "ab"), (Ids{2}));
    EXPECT_EQ((*model)->vocab_size(), 3);
    EXPECT_EQ(*(*model)->id_to_token(2), "ab");
  }
}

TEST(BpeModel, MergeOutsideVocabIsAnError) {
  const nlohmann::json spec = {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}}}, {"merges", {"a b"}}};
  auto model = BpeModel::parse(spec, "tokenizer.json: model");
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().message(), "tokenizer.json: model.merges[0] ('a', 'b'): 'ab' is not in the vocab");
}

TEST(BpeModel, OtherModelTypesAreNamed) {
  auto model = BpeModel::parse({{"type", "WordPiece"}, {"vocab", nlohmann::json::object()}}, "tokenizer.json: model");
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().message(), "tokenizer.json: model.type 'WordPiece' is not supported");
}

TEST(BpeModel, BadMergeEntryIsNamed) {
  const nlohmann::json spec = {{"type", "BPE"}, {"vocab", {{"a", 0}}}, {"merges", {"a b", 3}}};
  auto model = BpeModel::parse(spec, "tokenizer.json: model");
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("tokenizer.json: model.merges[1]"), std::string::npos);
}

}  // namespace
}  // namespace strata::tokenizer
