// GPT-2's reversible byte <-> printable-unicode mapping used by byte-level BPE.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace strata::tokenizer {

// The code point that stands for `byte` (GPT-2 bytes_to_unicode: printable Latin-1 bytes
// map to themselves, the rest to U+0100 upwards in byte order).
char32_t byte_to_unicode(uint8_t byte);
// The byte a code point stands for, or nullopt when it is not part of the mapping.
std::optional<uint8_t> unicode_to_byte(char32_t code_point);

// Every byte of `text` replaced by its code point (UTF-8 encoded).
std::string byte_level_encode(std::string_view text);
// Inverse of byte_level_encode for one token: when some character is not in the mapping
// (an added token such as "<|im_start|>" written in plain text), the token's own bytes.
std::string byte_level_decode_token(std::string_view token);

}  // namespace strata::tokenizer
