// Tests of the tokenizer.json normalizers, each parsed from a small JSON spec.
#include "engine/tokenizer/normalizer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace strata::tokenizer {
namespace {

std::string normalize(const std::string& spec, std::string text) {
  auto normalizer = parse_normalizer(nlohmann::json::parse(spec), "tokenizer.json: normalizer");
  EXPECT_TRUE(normalizer.ok()) << normalizer.status().message();
  if (!normalizer.ok() || !*normalizer) return text;
  (*normalizer)->normalize(text);
  return text;
}

TEST(Normalizer, NfcComposes) {
  EXPECT_EQ(normalize(R"({"type":"NFC"})", "e\xCC\x81"), "\xC3\xA9");  // e + combining acute -> é
  EXPECT_EQ(normalize(R"({"type":"NFC"})", "plain ascii"), "plain ascii");
}

TEST(Normalizer, NfdAndNfkc) {
  EXPECT_EQ(normalize(R"({"type":"NFD"})", "\xC3\xA9"), "e\xCC\x81");
  EXPECT_EQ(normalize(R"({"type":"NFKC"})", "\xEF\xAC\x81"), "fi");  // ligature ﬁ
}

TEST(Normalizer, PrependAddsPrefixToNonEmptyText) {
  EXPECT_EQ(normalize(R"({"type":"Prepend","prepend":"▁"})", "hi"), "▁hi");
  EXPECT_EQ(normalize(R"({"type":"Prepend","prepend":"▁"})", ""), "");
}

TEST(Normalizer, ReplaceStringReplacesEveryOccurrence) {
  EXPECT_EQ(normalize(R"({"type":"Replace","pattern":{"String":" "},"content":"▁"})", " a b  c"), "▁a▁b▁▁c");
}

TEST(Normalizer, ReplaceRegex) {
  EXPECT_EQ(normalize(R"({"type":"Replace","pattern":{"Regex":"\\s+"},"content":" "})", "a \t\n b"), "a b");
}

TEST(Normalizer, SequenceAppliesInOrder) {
  // The Llama normalizer that transformers writes when converting a SentencePiece model.
  const char* spec = R"({"type":"Sequence","normalizers":[
      {"type":"Prepend","prepend":"▁"},
      {"type":"Replace","pattern":{"String":" "},"content":"▁"}]})";
  EXPECT_EQ(normalize(spec, "Hello world"), "▁Hello▁world");
}

TEST(Normalizer, LowercaseAndStrip) {
  EXPECT_EQ(normalize(R"({"type":"Lowercase"})", "HeLLo \xC3\x89"), "hello \xC3\xA9");
  EXPECT_EQ(normalize(R"({"type":"Strip","strip_left":true,"strip_right":true})", "  hi \n"), "hi");
  EXPECT_EQ(normalize(R"({"type":"Strip","strip_left":false,"strip_right":true})", "  hi \n"), "  hi");
}

TEST(Normalizer, NullMeansNone) {
  auto normalizer = parse_normalizer(nlohmann::json(nullptr), "tokenizer.json: normalizer");
  ASSERT_TRUE(normalizer.ok());
  EXPECT_EQ(*normalizer, nullptr);
}

TEST(Normalizer, UnsupportedTypeIsNamed) {
  auto normalizer =
      parse_normalizer(nlohmann::json::parse(R"({"type":"Sequence","normalizers":[{"type":"BertNormalizer"}]})"),
                       "tokenizer.json: normalizer");
  ASSERT_FALSE(normalizer.ok());
  EXPECT_EQ(normalizer.status().message(),
            "tokenizer.json: normalizer.normalizers[0].type 'BertNormalizer' is not supported");
}

TEST(Normalizer, MissingFieldIsNamed) {
  auto normalizer = parse_normalizer(nlohmann::json::parse(R"({"type":"Prepend"})"), "tokenizer.json: normalizer");
  ASSERT_FALSE(normalizer.ok());
  EXPECT_EQ(normalizer.status().message(), "tokenizer.json: normalizer.prepend is missing");
}

TEST(Normalizer, BadRegexIsReported) {
  auto normalizer =
      parse_normalizer(nlohmann::json::parse(R"({"type":"Replace","pattern":{"Regex":"("},"content":""})"),
                       "tokenizer.json: normalizer");
  ASSERT_FALSE(normalizer.ok());
  EXPECT_NE(normalizer.status().message().find("tokenizer.json: normalizer.pattern"), std::string::npos)
      << normalizer.status().message();
}

}  // namespace
}  // namespace strata::tokenizer
