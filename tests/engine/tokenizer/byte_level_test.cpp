// Tests of GPT-2's byte <-> unicode mapping and the UTF-8 helpers.
#include "engine/tokenizer/byte_level.h"

#include <gtest/gtest.h>

#include <set>

#include "engine/tokenizer/utf8.h"

namespace strata::tokenizer {
namespace {

TEST(ByteLevel, PrintableBytesMapToThemselves) {
  EXPECT_EQ(byte_to_unicode('A'), U'A');
  EXPECT_EQ(byte_to_unicode('!'), U'!');
  EXPECT_EQ(byte_to_unicode('~'), U'~');
  EXPECT_EQ(byte_to_unicode(0xA1), U'\u00A1');
  EXPECT_EQ(byte_to_unicode(0xFF), U'\u00FF');
}

TEST(ByteLevel, OtherBytesMapUpwardsFrom256InByteOrder) {
  EXPECT_EQ(byte_to_unicode(0x00), U'\u0100');
  EXPECT_EQ(byte_to_unicode(' '), U'\u0120');   // "Ġ"
  EXPECT_EQ(byte_to_unicode('\n'), U'\u010A');  // "Ċ"
  EXPECT_EQ(byte_to_unicode(0x7F), U'\u0121');
  EXPECT_EQ(byte_to_unicode(0xAD), U'\u0143');  // the last one
}

TEST(ByteLevel, MappingIsABijection) {
  std::set<char32_t> seen;
  for (int b = 0; b < 256; ++b) {
    const char32_t cp = byte_to_unicode(static_cast<uint8_t>(b));
    EXPECT_TRUE(seen.insert(cp).second) << b;
    ASSERT_TRUE(unicode_to_byte(cp).has_value());
    EXPECT_EQ(*unicode_to_byte(cp), b);
  }
  EXPECT_FALSE(unicode_to_byte(U'\u4E2D').has_value());
}

TEST(ByteLevel, EncodeDecodeRoundTripsAllBytes) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::string encoded = byte_level_encode(all);
  EXPECT_TRUE(is_valid_utf8(encoded));
  EXPECT_EQ(byte_level_decode_token(encoded), all);
  EXPECT_EQ(byte_level_encode(" hi\n"), "\xC4\xA0hi\xC4\x8A");
}

TEST(ByteLevel, DecodeKeepsTokensOutsideTheAlphabet) {
  // "中" is not a byte character: an added token written in plain text.
  EXPECT_EQ(byte_level_decode_token("\xE4\xB8\xAD"), "\xE4\xB8\xAD");
  EXPECT_EQ(byte_level_decode_token("<|im_start|>"), "<|im_start|>");
  EXPECT_EQ(byte_level_decode_token("a b"), "a b");  // ' ' is outside the alphabet
}

TEST(Utf8, RepairReplacesMaximalIllFormedSubparts) {
  EXPECT_EQ(repair_utf8("abc"), "abc");
  EXPECT_EQ(repair_utf8("a\xE4\xB8"), "a\xEF\xBF\xBD");            // truncated 3-byte sequence: one U+FFFD
  EXPECT_EQ(repair_utf8("\xFF\xFE"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // two invalid bytes
  EXPECT_EQ(repair_utf8("\xE4\xB8x"), "\xEF\xBF\xBDx");
  EXPECT_EQ(repair_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
}

TEST(Utf8, ValidityAndIteration) {
  EXPECT_TRUE(is_valid_utf8("h\xC3\xA9llo \xF0\x9F\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xC3"));
  EXPECT_FALSE(is_valid_utf8("\xC0\x80"));  // overlong
  const std::string text = "\xC3\xA9\xF0\x9F\x98\x80";
  size_t pos = 0;
  EXPECT_EQ(next_code_point(text, pos), U'\u00E9');
  EXPECT_EQ(next_code_point(text, pos), U'\U0001F600');
  EXPECT_EQ(pos, text.size());
}

TEST(Utf8, CharacterClasses) {
  EXPECT_TRUE(is_whitespace(U'\u3000'));
  EXPECT_FALSE(is_whitespace(U'x'));
  EXPECT_TRUE(is_numeric(U'7'));
  EXPECT_TRUE(is_numeric(U'\u00BD'));  // ½ (No)
  EXPECT_TRUE(is_alphanumeric(U'\u00E9'));
  EXPECT_TRUE(is_punctuation(U'!'));
  EXPECT_FALSE(is_punctuation(U'+'));  // Sm
}

}  // namespace
}  // namespace strata::tokenizer
