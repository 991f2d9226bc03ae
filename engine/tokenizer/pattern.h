// The "pattern" of Split/Replace components: {"String": "..."} or {"Regex": "..."}.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/status.h"
#include "engine/tokenizer/regex.h"

namespace strata::tokenizer {

class Pattern {
 public:
  static Pattern literal(std::string text) { return Pattern(std::move(text), std::nullopt); }
  static Result<Pattern> regex(const std::string& expression);
  static Result<Pattern> parse(const nlohmann::json& spec, const std::string& where);

  // Non-overlapping, non-empty matches from left to right.
  std::vector<ByteRange> find_all(std::string_view text) const;
  std::string replace_all(std::string_view text, std::string_view content) const;

 private:
  Pattern(std::string literal, std::optional<Regex> regex) : literal_(std::move(literal)), regex_(std::move(regex)) {}
  std::string literal_;
  std::optional<Regex> regex_;
};

}  // namespace strata::tokenizer
