// UTF-8 helpers shared by the tokenizers: code point iteration, lossy repair, categories.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace strata::tokenizer {

inline constexpr char32_t kReplacementChar = 0xFFFD;
inline constexpr std::string_view kReplacementUtf8 = "\xEF\xBF\xBD";

// Length in bytes of the valid UTF-8 sequence starting at `pos`, or 0 when the bytes there
// are not a complete, well-formed sequence.
size_t utf8_sequence_length(std::string_view text, size_t pos);

// Decodes the code point at `pos` and advances `pos`; an ill-formed byte yields U+FFFD and
// advances by the maximal ill-formed subpart (at least one byte).
char32_t next_code_point(std::string_view text, size_t& pos);

void append_utf8(std::string& out, char32_t code_point);
std::string to_utf8(char32_t code_point);

bool is_valid_utf8(std::string_view text);

// Replaces every maximal ill-formed subpart with U+FFFD (Rust's from_utf8_lossy, Python's
// errors="replace"), so the result is always valid UTF-8.
std::string repair_utf8(std::string_view text);

bool is_whitespace(char32_t code_point);    // Unicode White_Space
bool is_alphanumeric(char32_t code_point);  // letters (L*) and numbers (N*)
bool is_numeric(char32_t code_point);       // N* (Rust's char::is_numeric)
bool is_punctuation(char32_t code_point);   // P*

}  // namespace strata::tokenizer
