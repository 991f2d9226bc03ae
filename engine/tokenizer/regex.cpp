// PCRE2 wrapper: JIT-compiled when the library supports it, one match_data per call so a
// shared Regex is safe to use from several threads.
#include "engine/tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace strata::tokenizer {

struct Regex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }
};

Result<Regex> Regex::compile(std::string_view pattern) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                                   &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR buffer[256];
    pcre2_get_error_message(error_code, buffer, sizeof(buffer));
    return invalid_argument("regex '" + std::string(pattern) + "' does not compile at offset " +
                            std::to_string(error_offset) + ": " + reinterpret_cast<char*>(buffer));
  }
  auto compiled = std::make_shared<Code>();
  compiled->code = code;
  compiled->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return Regex(std::move(compiled));
}

std::vector<ByteRange> Regex::find_all(std::string_view text) const {
  std::vector<ByteRange> matches;
  pcre2_match_data* match_data = pcre2_match_data_create_from_pattern(code_->code, nullptr);
  const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t offset = 0;
  // The text was validated once by the caller; skip PCRE2's per-call UTF check.
  const uint32_t options = PCRE2_NO_UTF_CHECK;
  while (offset <= text.size()) {
    int rc = code_->jit ? pcre2_jit_match(code_->code, subject, text.size(), offset, options, match_data, nullptr)
                        : PCRE2_ERROR_NOMATCH;
    if (!code_->jit || (rc < 0 && rc != PCRE2_ERROR_NOMATCH)) {
      // No JIT, or the JIT stack ran out: the interpreter keeps its backtracking on the heap.
      rc = pcre2_match(code_->code, subject, text.size(), offset, options, match_data, nullptr);
    }
    if (rc < 0) break;  // no more matches (or a resource limit): the rest is unmatched text
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match_data);
    const size_t begin = ovector[0];
    const size_t end = ovector[1];
    if (end > begin) {
      matches.push_back({begin, end});
      offset = end;
    } else {
      // Empty match: step over one whole character.
      offset = begin + 1;
      while (offset < text.size() && (static_cast<unsigned char>(text[offset]) & 0xC0) == 0x80) ++offset;
    }
  }
  pcre2_match_data_free(match_data);
  return matches;
}

}  // namespace strata::tokenizer
