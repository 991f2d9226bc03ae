// Tests of the tokenizer.json pre-tokenizers, each parsed from a small JSON spec.
#include "engine/tokenizer/pre_tokenizer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine/tokenizer/byte_level.h"

namespace strata::tokenizer {
namespace {

using Words = std::vector<std::string>;

Words pre_tokenize(const nlohmann::json& spec, const std::string& text, bool at_input_start = true) {
  auto pre_tokenizer = parse_pre_tokenizer(spec, "tokenizer.json: pre_tokenizer");
  EXPECT_TRUE(pre_tokenizer.ok()) << pre_tokenizer.status().message();
  std::vector<PreToken> pieces{{text, at_input_start}};
  if (pre_tokenizer.ok() && *pre_tokenizer) (*pre_tokenizer)->pre_tokenize(pieces);
  Words words;
  for (const PreToken& p : pieces) words.push_back(p.text);
  return words;
}

nlohmann::json split_spec(const std::string& regex, const std::string& behavior, bool invert = false) {
  return {{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", behavior}, {"invert", invert}};
}

constexpr const char* kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

TEST(PreTokenizer, SplitIsolatedKeepsMatchesAndGaps) {
  EXPECT_EQ(pre_tokenize(split_spec(kLlama3Regex, "Isolated"), "Hello world, it's 12345!\n\n  ok"),
            (Words{"Hello", " world", ",", " it", "'s", " ", "123", "45", "!\n\n", " ", " ok"}));
}

TEST(PreTokenizer, SplitRemovedDropsMatches) {
  EXPECT_EQ(pre_tokenize(split_spec("-", "Removed"), "a-b--c"), (Words{"a", "b", "c"}));
}

TEST(PreTokenizer, SplitMergedWithPreviousAndNext) {
  EXPECT_EQ(pre_tokenize(split_spec("-", "MergedWithPrevious"), "a-b--c"), (Words{"a-", "b-", "-", "c"}));
  EXPECT_EQ(pre_tokenize(split_spec("-", "MergedWithNext"), "a-b--c"), (Words{"a", "-b", "-", "-c"}));
}

TEST(PreTokenizer, SplitContiguousAndInvert) {
  EXPECT_EQ(pre_tokenize(split_spec("-", "Contiguous"), "a-b--c"), (Words{"a", "-", "b", "--", "c"}));
  EXPECT_EQ(pre_tokenize(split_spec("[a-z]+", "Removed", /*invert=*/true), "ab, cd"), (Words{"ab", "cd"}));
}

TEST(PreTokenizer, SplitStringPattern) {
  const nlohmann::json spec = {
      {"type", "Split"}, {"pattern", {{"String", ", "}}}, {"behavior", "Isolated"}, {"invert", false}};
  EXPECT_EQ(pre_tokenize(spec, "a, b, c"), (Words{"a", ", ", "b", ", ", "c"}));
}

TEST(PreTokenizer, ByteLevelUsesGpt2RegexAndMapsBytes) {
  const nlohmann::json spec = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  EXPECT_EQ(pre_tokenize(spec, "Hello world's  end\n"), (Words{"Hello", "\xC4\xA0world", "'s", "\xC4\xA0",
                                                               "\xC4\xA0"
                                                               "end",
                                                               "\xC4\x8A"}));
}

TEST(PreTokenizer, ByteLevelAddPrefixSpace) {
  const nlohmann::json spec = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  EXPECT_EQ(pre_tokenize(spec, "Hi"), (Words{"\xC4\xA0Hi"}));
  EXPECT_EQ(pre_tokenize(spec, " Hi"), (Words{"\xC4\xA0Hi"}));
}

TEST(PreTokenizer, ByteLevelWithoutRegexOnlyMapsBytes) {
  const nlohmann::json spec = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
  EXPECT_EQ(pre_tokenize(spec, "a b\xC3\xA9"), (Words{byte_level_encode("a b\xC3\xA9")}));
}

TEST(PreTokenizer, MetaspaceAlwaysPrependsAndSplits) {
  const nlohmann::json spec = {
      {"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "always"}, {"split", true}};
  EXPECT_EQ(pre_tokenize(spec, "Hello  world"), (Words{"▁Hello", "▁", "▁world"}));
  EXPECT_EQ(pre_tokenize(spec, "Hi", /*at_input_start=*/false), (Words{"▁Hi"}));
}

TEST(PreTokenizer, MetaspaceFirstPrependsOnlyAtInputStart) {
  const nlohmann::json spec = {
      {"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "first"}, {"split", false}};
  EXPECT_EQ(pre_tokenize(spec, "a b", /*at_input_start=*/true), (Words{"▁a▁b"}));
  EXPECT_EQ(pre_tokenize(spec, "a b", /*at_input_start=*/false), (Words{"a▁b"}));
}

TEST(PreTokenizer, MetaspaceNever) {
  const nlohmann::json spec = {
      {"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "never"}, {"split", true}};
  EXPECT_EQ(pre_tokenize(spec, "a b"), (Words{"a", "▁b"}));
}

TEST(PreTokenizer, DigitsIndividualAndGrouped) {
  EXPECT_EQ(pre_tokenize({{"type", "Digits"}, {"individual_digits", true}}, "ab123c"),
            (Words{"ab", "1", "2", "3", "c"}));
  EXPECT_EQ(pre_tokenize({{"type", "Digits"}, {"individual_digits", false}}, "ab123c4"),
            (Words{"ab", "123", "c", "4"}));
}

TEST(PreTokenizer, WhitespaceFamilies) {
  EXPECT_EQ(pre_tokenize({{"type", "WhitespaceSplit"}}, " a  b\tc "), (Words{"a", "b", "c"}));
  EXPECT_EQ(pre_tokenize({{"type", "Whitespace"}}, "Hey, you!"), (Words{"Hey", ",", "you", "!"}));
  EXPECT_EQ(pre_tokenize({{"type", "Punctuation"}}, "a,b"), (Words{"a", ",", "b"}));
}

TEST(PreTokenizer, SequenceAppliesInOrder) {
  // Qwen2 style: regex split, then ByteLevel without its own regex.
  const nlohmann::json spec = {{"type", "Sequence"},
                               {"pretokenizers",
                                {split_spec(kLlama3Regex, "Isolated"),
                                 {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  EXPECT_EQ(pre_tokenize(spec, "Hi there"), (Words{"Hi", "\xC4\xA0there"}));
}

TEST(PreTokenizer, GroupedDigitsThenUnicodeLetters) {
  EXPECT_EQ(pre_tokenize(split_spec(kLlama3Regex, "Isolated"), "\xE4\xBD\xA0\xE5\xA5\xBD 2024"),
            (Words{"\xE4\xBD\xA0\xE5\xA5\xBD", " ", "202", "4"}));
}

TEST(PreTokenizer, UnsupportedTypeIsNamed) {
  auto pre_tokenizer = parse_pre_tokenizer({{"type", "UnicodeScripts"}}, "tokenizer.json: pre_tokenizer");
  ASSERT_FALSE(pre_tokenizer.ok());
  EXPECT_EQ(pre_tokenizer.status().message(), "tokenizer.json: pre_tokenizer.type 'UnicodeScripts' is not supported");
}

TEST(PreTokenizer, UnknownBehaviorIsNamed) {
  auto pre_tokenizer = parse_pre_tokenizer(split_spec("a", "Sideways"), "tokenizer.json: pre_tokenizer");
  ASSERT_FALSE(pre_tokenizer.ok());
  EXPECT_NE(pre_tokenizer.status().message().find("pre_tokenizer.behavior 'Sideways'"), std::string::npos);
}

}  // namespace
}  // namespace strata::tokenizer
