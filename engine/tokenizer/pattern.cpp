// String and regex patterns shared by the Split pre-tokenizer and the Replace normalizer/decoder.
#include "engine/tokenizer/pattern.h"

#include "engine/tokenizer/json_fields.h"

namespace strata::tokenizer {

Result<Pattern> Pattern::regex(const std::string& expression) {
  STRATA_ASSIGN_OR_RETURN(Regex compiled, Regex::compile(expression));
  return Pattern(expression, std::move(compiled));
}

Result<Pattern> Pattern::parse(const Json& spec, const std::string& where) {
  if (spec.is_object()) {
    if (auto it = spec.find("String"); it != spec.end() && it->is_string()) {
      return literal(it->get<std::string>());
    }
    if (auto it = spec.find("Regex"); it != spec.end() && it->is_string()) {
      auto compiled = regex(it->get<std::string>());
      if (!compiled.ok()) return invalid_argument(where + ": " + compiled.status().message());
      return compiled;
    }
  }
  return invalid_argument(where + " must be {\"String\": ...} or {\"Regex\": ...}, not " + spec.dump());
}

std::vector<ByteRange> Pattern::find_all(std::string_view text) const {
  if (regex_) return regex_->find_all(text);
  std::vector<ByteRange> matches;
  if (literal_.empty()) return matches;
  for (size_t pos = text.find(literal_); pos != std::string_view::npos; pos = text.find(literal_, pos)) {
    matches.push_back({pos, pos + literal_.size()});
    pos += literal_.size();
  }
  return matches;
}

std::string Pattern::replace_all(std::string_view text, std::string_view content) const {
  const std::vector<ByteRange> matches = find_all(text);
  if (matches.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size() + matches.size() * content.size());
  size_t pos = 0;
  for (const ByteRange& m : matches) {
    out.append(text.substr(pos, m.begin - pos));
    out.append(content);
    pos = m.end;
  }
  out.append(text.substr(pos));
  return out;
}

}  // namespace strata::tokenizer
