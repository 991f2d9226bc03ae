// Template lexer: text, {{ }}, {% %}, {# #}, {% raw %}, and the expression tokens inside tags.
// The whitespace rules follow jinja2 3.x's lexer (OptionalLStrip, block_suffix_re).
#include "engine/template/lexer.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "engine/template/py_string.h"

namespace strata::tmpl {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

// Length of the run of Python whitespace (\s) starting at `pos`.
size_t whitespace_run(std::string_view s, size_t pos) {
  size_t end = pos;
  while (end < s.size()) {
    size_t next = end;
    if (!py_isspace(decode_code_point(s, next))) break;
    end = next;
  }
  return end - pos;
}

bool all_whitespace(std::string_view s) { return !s.empty() && whitespace_run(s, 0) == s.size(); }

std::string rstrip_whitespace(std::string_view s) { return py_strip(s, std::nullopt, false, true); }

class Lexer {
 public:
  Lexer(std::string_view source, const LexOptions& options) : src_(source), options_(options) {}

  Result<std::vector<Token>> run() {
    while (pos_ < src_.size()) {
      const size_t tag = find_tag_start(pos_);
      if (tag == std::string_view::npos) {
        emit_text(src_.substr(pos_), pos_);
        break;
      }
      const char kind = src_[tag + 1];
      size_t after = tag + 2;
      char sign = 0;
      if (after < src_.size() && (src_[after] == '-' || src_[after] == '+')) sign = src_[after++];

      std::string text(src_.substr(pos_, tag - pos_));
      const uint32_t text_offset = static_cast<uint32_t>(pos_);
      size_t raw_content = 0;
      const bool raw = kind == '%' && match_raw_begin(after, &raw_content);
      apply_lstrip(text, sign, /*is_variable=*/kind == '{');
      emit_text(text, text_offset);

      if (raw) {
        STRATA_RETURN_IF_ERROR(lex_raw(tag, raw_content));
      } else if (kind == '#') {
        STRATA_RETURN_IF_ERROR(lex_comment(tag, after));
      } else {
        STRATA_RETURN_IF_ERROR(lex_tag(tag, after, kind == '%'));
      }
    }
    Token end;
    end.kind = TokenKind::kEnd;
    end.offset = static_cast<uint32_t>(src_.size());
    tokens_.push_back(std::move(end));
    return std::move(tokens_);
  }

 private:
  size_t find_tag_start(size_t from) const {
    for (size_t p = src_.find('{', from); p != std::string_view::npos; p = src_.find('{', p + 1)) {
      if (p + 1 < src_.size() && (src_[p + 1] == '{' || src_[p + 1] == '%' || src_[p + 1] == '#')) return p;
    }
    return std::string_view::npos;
  }

  // The text before a tag: `{%-` strips all whitespace; lstrip_blocks strips the spaces and
  // tabs that alone precede a block or comment tag on its line.
  void apply_lstrip(std::string& text, char sign, bool is_variable) const {
    if (sign == '-') {
      text = rstrip_whitespace(text);
      return;
    }
    if (sign == '+' || !options_.lstrip_blocks || is_variable) return;
    const size_t newline = text.rfind('\n');
    const size_t line_start = newline == std::string::npos ? 0 : newline + 1;
    if (line_start == 0 && !line_starting_) return;
    if (all_whitespace(std::string_view(text).substr(line_start))) text.resize(line_start);
  }

  void emit_text(std::string_view text, size_t offset) {
    if (text.empty()) return;
    Token token;
    token.kind = TokenKind::kText;
    token.text = std::string(text);
    token.offset = static_cast<uint32_t>(offset);
    tokens_.push_back(std::move(token));
  }

  void emit(TokenKind kind, std::string text, size_t offset) {
    Token token;
    token.kind = kind;
    token.text = std::move(text);
    token.offset = static_cast<uint32_t>(offset);
    tokens_.push_back(std::move(token));
  }

  // The end of a block-like tag at `p`: `+%}`, `-%}` plus whitespace, or `%}` plus one
  // newline under trim_blocks. Returns the position after it, or npos.
  size_t match_block_end(size_t p, char close) const {
    const auto at = [&](size_t i, std::string_view s) { return src_.substr(i, s.size()) == s; };
    const std::string end_mark{close, '}'};
    if (p < src_.size() && src_[p] == '+' && at(p + 1, end_mark)) return p + 3;
    if (p < src_.size() && src_[p] == '-' && at(p + 1, end_mark)) return p + 3 + whitespace_run(src_, p + 3);
    if (at(p, end_mark)) {
      size_t end = p + 2;
      if (options_.trim_blocks && end < src_.size() && src_[end] == '\n') ++end;
      return end;
    }
    return std::string_view::npos;
  }

  // `{%` sign? \s* raw \s* (-%}\s* | %})
  bool match_raw_begin(size_t p, size_t* content_start) const {
    p += whitespace_run(src_, p);
    if (src_.substr(p, 3) != "raw") return false;
    p += 3;
    p += whitespace_run(src_, p);
    if (src_.substr(p, 3) == "-%}") {
      *content_start = p + 3 + whitespace_run(src_, p + 3);
      return true;
    }
    if (src_.substr(p, 2) == "%}") {
      *content_start = p + 2;
      return true;
    }
    return false;
  }

  Status lex_raw(size_t tag, size_t content_start) {
    line_starting_ = src_[content_start - 1] == '\n';
    for (size_t p = src_.find("{%", content_start); p != std::string_view::npos; p = src_.find("{%", p + 1)) {
      size_t q = p + 2;
      char sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) sign = src_[q++];
      q += whitespace_run(src_, q);
      if (src_.substr(q, 6) != "endraw") continue;
      q += 6;
      q += whitespace_run(src_, q);
      const size_t end = match_block_end(q, '%');
      if (end == std::string_view::npos) continue;
      std::string text(src_.substr(content_start, p - content_start));
      apply_lstrip(text, sign, false);
      emit_text(text, content_start);
      pos_ = end;
      line_starting_ = src_[end - 1] == '\n';
      return {};
    }
    return syntax_error(src_, static_cast<uint32_t>(tag), "Missing end of raw directive");
  }

  Status lex_comment(size_t tag, size_t content_start) {
    const size_t close = src_.find("#}", content_start);
    if (close == std::string_view::npos)
      return syntax_error(src_, static_cast<uint32_t>(tag), "Missing end of comment tag");
    size_t end = close + 2;
    const char before = close > content_start ? src_[close - 1] : 0;
    if (before == '-') {
      end += whitespace_run(src_, end);
    } else if (before != '+' && options_.trim_blocks && end < src_.size() && src_[end] == '\n') {
      ++end;
    }
    pos_ = end;
    line_starting_ = src_[end - 1] == '\n';
    return {};
  }

  Status lex_tag(size_t tag, size_t p, bool is_block) {
    emit(is_block ? TokenKind::kBlockBegin : TokenKind::kVariableBegin, {}, tag);
    std::vector<char> balance;
    while (true) {
      if (p >= src_.size()) {
        return syntax_error(
            src_, static_cast<uint32_t>(tag),
            is_block ? "unexpected end of template, expected '%}'" : "unexpected end of template, expected '}}'");
      }
      if (balance.empty()) {
        size_t end = std::string_view::npos;
        if (is_block) {
          end = match_block_end(p, '%');
        } else if (src_[p] == '-' && src_.substr(p + 1, 2) == "}}") {
          end = p + 3 + whitespace_run(src_, p + 3);
        } else if (src_.substr(p, 2) == "}}") {
          end = p + 2;
        }
        if (end != std::string_view::npos) {
          emit(is_block ? TokenKind::kBlockEnd : TokenKind::kVariableEnd, {}, p);
          pos_ = end;
          line_starting_ = src_[end - 1] == '\n';
          return {};
        }
      }
      const size_t space = whitespace_run(src_, p);
      if (space > 0) {
        p += space;
        continue;
      }
      const char c = src_[p];
      if (is_digit(c)) {
        STRATA_RETURN_IF_ERROR(lex_number(p));
      } else if (is_name_start(c)) {
        size_t end = p;
        while (end < src_.size() && is_name_char(src_[end])) ++end;
        emit(TokenKind::kName, std::string(src_.substr(p, end - p)), p);
        p = end;
      } else if (c == '\'' || c == '"') {
        STRATA_RETURN_IF_ERROR(lex_string(p));
      } else {
        STRATA_RETURN_IF_ERROR(lex_operator(p, balance));
      }
    }
  }

  // Digits with optional '_' separators between them; returns the end, or `p` if none.
  size_t digit_run(size_t p) const {
    size_t end = p;
    while (end < src_.size() && is_digit(src_[end])) {
      ++end;
      if (end + 1 < src_.size() && src_[end] == '_' && is_digit(src_[end + 1])) ++end;
    }
    return end;
  }

  Status lex_number(size_t& p) {
    const size_t start = p;
    // Hex, octal and binary integers.
    if (src_[p] == '0' && p + 2 < src_.size()) {
      const char base_char = static_cast<char>(src_[p + 1] | 0x20);
      const int base = base_char == 'x' ? 16 : base_char == 'o' ? 8 : base_char == 'b' ? 2 : 0;
      if (base != 0) {
        size_t end = p + 2;
        std::string digits;
        while (end < src_.size()) {
          const char d = src_[end];
          if (d == '_') {
            ++end;
            continue;
          }
          const int v = is_digit(d) ? d - '0' : ((d | 0x20) >= 'a' && (d | 0x20) <= 'f') ? (d | 0x20) - 'a' + 10 : 99;
          if (v >= base) break;
          digits += d;
          ++end;
        }
        if (!digits.empty()) {
          Token token;
          token.kind = TokenKind::kInteger;
          token.int_value = std::strtoll(digits.c_str(), nullptr, base);
          token.offset = static_cast<uint32_t>(start);
          tokens_.push_back(std::move(token));
          p = end;
          return {};
        }
      }
    }
    size_t end = digit_run(p);
    bool is_float = false;
    // A float: digits '.' digits, optionally followed by an exponent, or digits + exponent;
    // never right after a '.', so that `x.0.1` is two subscripts.
    const bool float_allowed = start == 0 || src_[start - 1] != '.';
    if (float_allowed && end + 1 < src_.size() && src_[end] == '.' && is_digit(src_[end + 1])) {
      end = digit_run(end + 1);
      is_float = true;
    }
    if (float_allowed && end < src_.size() && (src_[end] == 'e' || src_[end] == 'E')) {
      size_t q = end + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < src_.size() && is_digit(src_[q])) {
        end = digit_run(q);
        is_float = true;
      }
    }
    std::string digits;
    for (size_t i = start; i < end; ++i) {
      if (src_[i] != '_') digits += src_[i];
    }
    Token token;
    token.offset = static_cast<uint32_t>(start);
    if (is_float) {
      token.kind = TokenKind::kFloat;
      token.float_value = std::strtod(digits.c_str(), nullptr);
    } else {
      token.kind = TokenKind::kInteger;
      errno = 0;
      token.int_value = std::strtoll(digits.c_str(), nullptr, 10);
      if (errno == ERANGE) return syntax_error(src_, static_cast<uint32_t>(start), "integer literal too large");
    }
    tokens_.push_back(std::move(token));
    p = end;
    return {};
  }

  Status lex_string(size_t& p) {
    const char quote = src_[p];
    const size_t start = p;
    std::string value;
    size_t i = p + 1;
    while (true) {
      if (i >= src_.size()) return syntax_error(src_, static_cast<uint32_t>(start), "unterminated string literal");
      const char c = src_[i];
      if (c == quote) break;
      if (c != '\\') {
        value += c;
        ++i;
        continue;
      }
      if (i + 1 >= src_.size()) return syntax_error(src_, static_cast<uint32_t>(start), "unterminated string literal");
      const char e = src_[i + 1];
      i += 2;
      // Python's unicode-escape decoding, which jinja2 applies to string literals.
      switch (e) {
        case '\n':
          break;  // line continuation
        case '\\':
          value += '\\';
          break;
        case '\'':
          value += '\'';
          break;
        case '"':
          value += '"';
          break;
        case 'a':
          value += '\a';
          break;
        case 'b':
          value += '\b';
          break;
        case 'f':
          value += '\f';
          break;
        case 'n':
          value += '\n';
          break;
        case 'r':
          value += '\r';
          break;
        case 't':
          value += '\t';
          break;
        case 'v':
          value += '\v';
          break;
        case 'x':
        case 'u':
        case 'U': {
          const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (i + n > src_.size())
            return syntax_error(src_, static_cast<uint32_t>(start), "truncated \\" + std::string(1, e) + " escape");
          char32_t cp = 0;
          for (size_t k = 0; k < n; ++k) {
            const char h = src_[i + k];
            int v = -1;
            if (is_digit(h))
              v = h - '0';
            else if ((h | 0x20) >= 'a' && (h | 0x20) <= 'f')
              v = (h | 0x20) - 'a' + 10;
            if (v < 0)
              return syntax_error(src_, static_cast<uint32_t>(start), "truncated \\" + std::string(1, e) + " escape");
            cp = cp * 16 + static_cast<char32_t>(v);
          }
          if (cp > 0x10FFFF) return syntax_error(src_, static_cast<uint32_t>(start), "illegal Unicode character");
          append_code_point(value, cp);
          i += n;
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            char32_t cp = static_cast<char32_t>(e - '0');
            for (int k = 0; k < 2 && i < src_.size() && src_[i] >= '0' && src_[i] <= '7'; ++k)
              cp = cp * 8 + (src_[i++] - '0');
            append_code_point(value, cp);
          } else {
            value += '\\';  // unknown escapes keep their backslash
            value += e;
          }
      }
    }
    emit(TokenKind::kString, std::move(value), start);
    p = i + 1;
    return {};
  }

  Status lex_operator(size_t& p, std::vector<char>& balance) {
    static constexpr std::string_view kTwoChar[] = {"//", "**", "==", "!=", "<=", ">="};
    for (std::string_view op : kTwoChar) {
      if (src_.substr(p, 2) == op) {
        emit(TokenKind::kOperator, std::string(op), p);
        p += 2;
        return {};
      }
    }
    const char c = src_[p];
    static constexpr std::string_view kOneChar = "+-/*%~[](){}<>=.:|,;";
    if (kOneChar.find(c) == std::string_view::npos) {
      return syntax_error(src_, static_cast<uint32_t>(p), "unexpected char '" + std::string(1, c) + "'");
    }
    if (c == '(' || c == '[' || c == '{') {
      balance.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (balance.empty())
        return syntax_error(src_, static_cast<uint32_t>(p), "unexpected '" + std::string(1, c) + "'");
      if (balance.back() != c) {
        return syntax_error(
            src_, static_cast<uint32_t>(p),
            "unexpected '" + std::string(1, c) + "', expected '" + std::string(1, balance.back()) + "'");
      }
      balance.pop_back();
    }
    emit(TokenKind::kOperator, std::string(1, c), p);
    ++p;
    return {};
  }

  std::string_view src_;
  LexOptions options_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

std::string normalize_source(std::string_view source, bool keep_trailing_newline) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

Result<std::vector<Token>> tokenize(std::string_view source, const LexOptions& options) {
  return Lexer(source, options).run();
}

int line_of(std::string_view source, uint32_t offset) {
  int line = 1;
  for (size_t i = 0; i < offset && i < source.size(); ++i) {
    if (source[i] == '\n') ++line;
  }
  return line;
}

Status syntax_error(std::string_view source, uint32_t offset, std::string_view message) {
  offset = std::min<uint32_t>(offset, static_cast<uint32_t>(source.size()));
  const size_t newline = offset == 0 ? std::string_view::npos : source.rfind('\n', offset - 1);
  const size_t line_begin = newline == std::string_view::npos ? 0 : newline + 1;
  const size_t column = code_point_length(source.substr(line_begin, offset - line_begin)) + 1;
  return invalid_argument("chat template: syntax error at line " + std::to_string(line_of(source, offset)) +
                          ", column " + std::to_string(column) + ": " + std::string(message));
}

}  // namespace strata::tmpl
