// A compiled PCRE2 pattern (UTF + Unicode properties), kept behind a pointer so pcre2.h
// stays out of every other file.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/core/status.h"

namespace strata::tokenizer {

struct ByteRange {
  size_t begin = 0;
  size_t end = 0;
};

class Regex {
 public:
  // Compiles with PCRE2_UTF | PCRE2_UCP; the error names the offset in the pattern.
  static Result<Regex> compile(std::string_view pattern);

  // Non-overlapping, non-empty matches from left to right, as byte ranges of `text`
  // (which must be valid UTF-8).
  std::vector<ByteRange> find_all(std::string_view text) const;

 private:
  struct Code;
  explicit Regex(std::shared_ptr<const Code> code) : code_(std::move(code)) {}
  std::shared_ptr<const Code> code_;
};

}  // namespace strata::tokenizer
