// Tests of the tokenizer.json decoders, each parsed from a small JSON spec.
#include "engine/tokenizer/decoder.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace strata::tokenizer {
namespace {

using Tokens = std::vector<std::string>;

Tokens decode(const nlohmann::json& spec, Tokens tokens) {
  auto decoder = parse_decoder(spec, "tokenizer.json: decoder");
  EXPECT_TRUE(decoder.ok()) << decoder.status().message();
  if (decoder.ok() && *decoder) (*decoder)->decode_chain(tokens);
  return tokens;
}

// The decoder transformers writes for Llama-style SentencePiece conversions.
const nlohmann::json kLlamaDecoder = nlohmann::json::parse(R"({"type":"Sequence","decoders":[
    {"type":"Replace","pattern":{"String":"▁"},"content":" "},
    {"type":"ByteFallback"},
    {"type":"Fuse"},
    {"type":"Strip","content":" ","start":1,"stop":0}]})");

TEST(Decoder, ByteLevelJoinsAndMapsBack) {
  EXPECT_EQ(decode({{"type", "ByteLevel"}}, {"Hello", "\xC4\xA0world", "\xC4\x8A"}), (Tokens{"Hello world\n"}));
}

TEST(Decoder, ByteLevelRepairsBrokenUtf8) {
  // "Ã¤" is the byte-level form of C3 A4 ("ä"); a lone "Ã" is an incomplete character.
  EXPECT_EQ(decode({{"type", "ByteLevel"}}, {"\xC3\x83\xC2\xA4"}), (Tokens{"\xC3\xA4"}));
  EXPECT_EQ(decode({{"type", "ByteLevel"}}, {"a", "\xC3\x83"}), (Tokens{"a\xEF\xBF\xBD"}));
}

TEST(Decoder, ByteLevelPassesTokensOutsideTheAlphabet) {
  EXPECT_EQ(decode({{"type", "ByteLevel"}}, {"<|im_start|>", "\xE4\xBD\xA0"}), (Tokens{"<|im_start|>\xE4\xBD\xA0"}));
}

TEST(Decoder, ByteFallbackGathersByteRuns) {
  EXPECT_EQ(decode({{"type", "ByteFallback"}}, {"a", "<0xE4>", "<0xBD>", "<0xA0>", "b"}),
            (Tokens{"a", "\xE4\xBD\xA0", "b"}));
}

TEST(Decoder, ByteFallbackInvalidBytesBecomeOneReplacementEach) {
  EXPECT_EQ(decode({{"type", "ByteFallback"}}, {"<0xE4>", "<0xBD>", "x"}),
            (Tokens{"\xEF\xBF\xBD", "\xEF\xBF\xBD", "x"}));
}

TEST(Decoder, LlamaSequence) {
  EXPECT_EQ(decode(kLlamaDecoder, {"▁Hello", "▁world", "<0x21>"}), (Tokens{"Hello world!"}));
  EXPECT_EQ(decode(kLlamaDecoder, {"<s>", "▁Hello"}), (Tokens{"<s> Hello"}));
}

TEST(Decoder, StripRemovesAtMostTheGivenCounts) {
  const nlohmann::json spec = {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 2}};
  EXPECT_EQ(decode(spec, {"  a   ", " "}), (Tokens{" a ", ""}));
}

TEST(Decoder, MetaspaceDropsLeadingReplacementOfFirstToken) {
  const nlohmann::json spec = {
      {"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "always"}, {"split", true}};
  EXPECT_EQ(decode(spec, {"▁Hey", "▁friend"}), (Tokens{"Hey", " friend"}));
  const nlohmann::json never = {
      {"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "never"}, {"split", true}};
  EXPECT_EQ(decode(never, {"▁Hey"}), (Tokens{" Hey"}));
}

TEST(Decoder, FuseJoins) { EXPECT_EQ(decode({{"type", "Fuse"}}, {"a", "b", "c"}), (Tokens{"abc"})); }

TEST(Decoder, UnsupportedTypeIsNamed) {
  auto decoder = parse_decoder({{"type", "WordPiece"}}, "tokenizer.json: decoder");
  ASSERT_FALSE(decoder.ok());
  EXPECT_EQ(decoder.status().message(), "tokenizer.json: decoder.type 'WordPiece' is not supported");
}

}  // namespace
}  // namespace strata::tokenizer
