// GPT-2 bytes_to_unicode (openai/gpt-2 encoder.py), built once as two lookup tables.
#include "engine/tokenizer/byte_level.h"

#include <array>

#include "engine/tokenizer/utf8.h"

namespace strata::tokenizer {
namespace {

struct ByteTables {
  std::array<char32_t, 256> to_unicode{};
  std::array<std::string, 256> utf8_of{};
  std::array<int16_t, 324> to_byte{};  // code points 0..323 cover the whole mapping

  ByteTables() {
    to_byte.fill(-1);
    const auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const char32_t cp = printable(b) ? static_cast<char32_t>(b) : next++;
      to_unicode[b] = cp;
      utf8_of[b] = to_utf8(cp);
      to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteTables& tables() {
  static const ByteTables kTables;
  return kTables;
}

}  // namespace

char32_t byte_to_unicode(uint8_t byte) { return tables().to_unicode[byte]; }

std::optional<uint8_t> unicode_to_byte(char32_t code_point) {
  if (code_point >= tables().to_byte.size()) return std::nullopt;
  const int16_t b = tables().to_byte[code_point];
  if (b < 0) return std::nullopt;
  return static_cast<uint8_t>(b);
}

std::string byte_level_encode(std::string_view text) {
  const ByteTables& t = tables();
  std::string out;
  out.reserve(text.size() * 2);
  for (const char c : text) out += t.utf8_of[static_cast<unsigned char>(c)];
  return out;
}

std::string byte_level_decode_token(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (size_t pos = 0; pos < token.size();) {
    const size_t start = pos;
    const char32_t cp = next_code_point(token, pos);
    const auto byte = unicode_to_byte(cp);
    if (!byte || (cp == kReplacementChar && utf8_sequence_length(token, start) == 0)) {
      return std::string(token);
    }
    out.push_back(static_cast<char>(*byte));
  }
  return out;
}

}  // namespace strata::tokenizer
