// Splits a template into text and tag tokens the way jinja2's lexer does, applying its
// whitespace control (`{%-`, `-%}`, trim_blocks, lstrip_blocks) to the text it emits.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/status.h"

namespace strata::tmpl {

enum class TokenKind : uint8_t {
  kText,
  kVariableBegin,  // {{
  kVariableEnd,    // }}
  kBlockBegin,     // {%
  kBlockEnd,       // %}
  kName,
  kString,
  kInteger,
  kFloat,
  kOperator,
  kEnd,  // end of the template
};

struct Token {
  TokenKind kind = TokenKind::kEnd;
  std::string text;  // text data, a name, an operator, or a string literal's decoded value
  int64_t int_value = 0;
  double float_value = 0.0;
  uint32_t offset = 0;  // byte offset in the normalized source
};

struct LexOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
};

// jinja2 turns every \r\n and \r into \n and, unless keep_trailing_newline, drops one
// trailing newline before lexing.
std::string normalize_source(std::string_view source, bool keep_trailing_newline);

// `source` must already be normalized. The last token is kEnd.
Result<std::vector<Token>> tokenize(std::string_view source, const LexOptions& options);

// "chat template: syntax error at line L, column C: message" for the byte offset given.
Status syntax_error(std::string_view source, uint32_t offset, std::string_view message);

// 1-based line of a byte offset.
int line_of(std::string_view source, uint32_t offset);

}  // namespace strata::tmpl
