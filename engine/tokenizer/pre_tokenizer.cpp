// Pre-tokenizer implementations, following the splitting rules of HF tokenizers
// (NormalizedString::split: matches become pieces according to the delimiter behavior).
#include "engine/tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <functional>
#include <optional>

#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/json_fields.h"
#include "engine/tokenizer/pattern.h"
#include "engine/tokenizer/utf8.h"

namespace strata::tokenizer {
namespace {

struct Segment {
  ByteRange range;
  bool is_match = false;
};

// Matches plus the text between them, covering [0, size).
std::vector<Segment> cover(const std::vector<ByteRange>& matches, size_t size, bool invert) {
  std::vector<Segment> segments;
  segments.reserve(matches.size() * 2 + 1);
  size_t prev = 0;
  for (const ByteRange& m : matches) {
    if (prev < m.begin) segments.push_back({{prev, m.begin}, invert});
    segments.push_back({m, !invert});
    prev = m.end;
  }
  if (prev < size) segments.push_back({{prev, size}, invert});
  return segments;
}

// Every character for which `predicate` holds is one match.
std::vector<ByteRange> match_chars(std::string_view text, const std::function<bool(char32_t)>& predicate) {
  std::vector<ByteRange> matches;
  for (size_t pos = 0; pos < text.size();) {
    const size_t begin = pos;
    if (predicate(next_code_point(text, pos))) matches.push_back({begin, pos});
  }
  return matches;
}

// The ranges that become pieces (HF NormalizedString::split).
std::vector<ByteRange> apply_behavior(const std::vector<Segment>& segments, SplitBehavior behavior) {
  std::vector<ByteRange> pieces;
  pieces.reserve(segments.size());
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const Segment& s : segments) {
        if (!s.is_match) pieces.push_back(s.range);
      }
      break;
    case SplitBehavior::kIsolated:
      for (const Segment& s : segments) pieces.push_back(s.range);
      break;
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Segment& s : segments) {
        if (s.is_match && !previous_match && !pieces.empty()) {
          pieces.back().end = s.range.end;
        } else {
          pieces.push_back(s.range);
        }
        previous_match = s.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
        if (it->is_match && !previous_match && !pieces.empty()) {
          pieces.back().begin = it->range.begin;
        } else {
          pieces.push_back(it->range);
        }
        previous_match = it->is_match;
      }
      std::reverse(pieces.begin(), pieces.end());
      break;
    }
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const Segment& s : segments) {
        if (s.is_match == previous_match && !pieces.empty()) {
          pieces.back().end = s.range.end;
        } else {
          pieces.push_back(s.range);
        }
        previous_match = s.is_match;
      }
      break;
    }
  }
  return pieces;
}

// Replaces each piece by the pieces `split_one` makes of it, dropping empty ones.
template <typename SplitOne>
void split_each(std::vector<PreToken>& pieces, SplitOne&& split_one) {
  std::vector<PreToken> out;
  out.reserve(pieces.size());
  for (PreToken& piece : pieces) {
    split_one(piece, out);
  }
  pieces = std::move(out);
}

void emit_ranges(const PreToken& piece, const std::vector<ByteRange>& ranges, std::vector<PreToken>& out) {
  for (const ByteRange& r : ranges) {
    if (r.end <= r.begin) continue;
    out.push_back({piece.text.substr(r.begin, r.end - r.begin), piece.at_input_start && r.begin == 0});
  }
}

Result<SplitBehavior> parse_behavior(const Json& spec, const char* key, SplitBehavior fallback,
                                     const std::string& where) {
  auto it = spec.find(key);
  if (it == spec.end() || it->is_null()) return fallback;
  if (!it->is_string()) return invalid_argument(field_path(where, key) + " must be a string");
  const std::string& name = it->get_ref<const std::string&>();
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  return invalid_argument(field_path(where, key) + " '" + name + "' is not a known split behavior");
}

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    split_each(pieces, [&](const PreToken& piece, std::vector<PreToken>& out) {
      const auto segments = cover(pattern_.find_all(piece.text), piece.text.size(), invert_);
      emit_ranges(piece, apply_behavior(segments, behavior_), out);
    });
  }

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

// Splits on single characters chosen by a predicate (Digits, Punctuation, WhitespaceSplit).
class CharSplitPreTokenizer final : public PreTokenizer {
 public:
  CharSplitPreTokenizer(std::function<bool(char32_t)> predicate, SplitBehavior behavior)
      : predicate_(std::move(predicate)), behavior_(behavior) {}
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    split_each(pieces, [&](const PreToken& piece, std::vector<PreToken>& out) {
      const auto segments = cover(match_chars(piece.text, predicate_), piece.text.size(), false);
      emit_ranges(piece, apply_behavior(segments, behavior_), out);
    });
  }

 private:
  std::function<bool(char32_t)> predicate_;
  SplitBehavior behavior_;
};

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::optional<Regex> regex)
      : add_prefix_space_(add_prefix_space), regex_(std::move(regex)) {}
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    split_each(pieces, [&](PreToken& piece, std::vector<PreToken>& out) {
      if (add_prefix_space_ && (piece.text.empty() || piece.text[0] != ' ')) piece.text.insert(0, " ");
      const size_t first = out.size();
      if (regex_) {
        emit_ranges(
            piece,
            apply_behavior(cover(regex_->find_all(piece.text), piece.text.size(), false), SplitBehavior::kIsolated),
            out);
      } else if (!piece.text.empty()) {
        out.push_back(std::move(piece));
      }
      for (size_t i = first; i < out.size(); ++i) out[i].text = byte_level_encode(out[i].text);
    });
  }

 private:
  bool add_prefix_space_;
  std::optional<Regex> regex_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(char32_t replacement, PrependScheme scheme, bool split)
      : replacement_(replacement), replacement_utf8_(to_utf8(replacement)), scheme_(scheme), split_(split) {}
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    split_each(pieces, [&](PreToken& piece, std::vector<PreToken>& out) {
      std::string text;
      text.reserve(piece.text.size() + 8);
      for (const char c : piece.text) {
        if (c == ' ') {
          text += replacement_utf8_;
        } else {
          text.push_back(c);
        }
      }
      const bool starts_with_replacement = text.compare(0, replacement_utf8_.size(), replacement_utf8_) == 0;
      const bool prepend = !starts_with_replacement && (scheme_ == PrependScheme::kAlways ||
                                                        (scheme_ == PrependScheme::kFirst && piece.at_input_start));
      if (prepend) text.insert(0, replacement_utf8_);
      PreToken replaced{std::move(text), piece.at_input_start};
      if (!split_) {
        if (!replaced.text.empty()) out.push_back(std::move(replaced));
        return;
      }
      const auto matches = match_chars(replaced.text, [&](char32_t c) { return c == replacement_; });
      emit_ranges(replaced, apply_behavior(cover(matches, replaced.text.size(), false), SplitBehavior::kMergedWithNext),
                  out);
    });
  }

 private:
  char32_t replacement_;
  std::string replacement_utf8_;
  PrependScheme scheme_;
  bool split_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    for (const auto& step : steps_) step->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

Result<char32_t> read_single_char(const Json& spec, const char* key, const std::string& where) {
  STRATA_ASSIGN_OR_RETURN(const std::string text, read_string(spec, key, where));
  size_t pos = 0;
  const char32_t cp = text.empty() ? 0 : next_code_point(text, pos);
  if (text.empty() || pos != text.size()) {
    return invalid_argument(field_path(where, key) + " must be a single character, not '" + text + "'");
  }
  return cp;
}

}  // namespace

Result<std::unique_ptr<PreTokenizer>> parse_pre_tokenizer(const Json& spec, const std::string& where) {
  using Ptr = std::unique_ptr<PreTokenizer>;
  if (spec.is_null()) return Ptr();
  STRATA_ASSIGN_OR_RETURN(const std::string type, read_type(spec, where));
  if (type == "Sequence") {
    auto it = spec.find("pretokenizers");
    if (it == spec.end() || !it->is_array()) return invalid_argument(where + ".pretokenizers must be an array");
    std::vector<Ptr> steps;
    for (size_t i = 0; i < it->size(); ++i) {
      STRATA_ASSIGN_OR_RETURN(Ptr step,
                              parse_pre_tokenizer((*it)[i], where + ".pretokenizers[" + std::to_string(i) + "]"));
      if (step) steps.push_back(std::move(step));
    }
    return Ptr(new SequencePreTokenizer(std::move(steps)));
  }
  if (type == "Split") {
    if (!spec.contains("pattern")) return invalid_argument(where + ".pattern is missing");
    STRATA_ASSIGN_OR_RETURN(Pattern pattern, Pattern::parse(spec["pattern"], where + ".pattern"));
    STRATA_ASSIGN_OR_RETURN(const SplitBehavior behavior,
                            parse_behavior(spec, "behavior", SplitBehavior::kIsolated, where));
    STRATA_ASSIGN_OR_RETURN(const bool invert, read_bool(spec, "invert", false, where));
    return Ptr(new SplitPreTokenizer(std::move(pattern), behavior, invert));
  }
  if (type == "ByteLevel") {
    STRATA_ASSIGN_OR_RETURN(const bool add_prefix_space, read_bool(spec, "add_prefix_space", true, where));
    STRATA_ASSIGN_OR_RETURN(const bool use_regex, read_bool(spec, "use_regex", true, where));
    std::optional<Regex> regex;
    if (use_regex) {
      STRATA_ASSIGN_OR_RETURN(Regex compiled, Regex::compile(kGpt2SplitRegex));
      regex = std::move(compiled);
    }
    return Ptr(new ByteLevelPreTokenizer(add_prefix_space, std::move(regex)));
  }
  if (type == "Metaspace") {
    STRATA_ASSIGN_OR_RETURN(const char32_t replacement, read_single_char(spec, "replacement", where));
    STRATA_ASSIGN_OR_RETURN(const bool split, read_bool(spec, "split", true, where));
    PrependScheme scheme = PrependScheme::kAlways;
    STRATA_ASSIGN_OR_RETURN(auto scheme_name, read_optional_string(spec, "prepend_scheme", where));
    if (scheme_name) {
      if (*scheme_name == "always") {
        scheme = PrependScheme::kAlways;
      } else if (*scheme_name == "first") {
        scheme = PrependScheme::kFirst;
      } else if (*scheme_name == "never") {
        scheme = PrependScheme::kNever;
      } else {
        return invalid_argument(where + ".prepend_scheme '" + *scheme_name + "' is not always, first or never");
      }
    } else {
      // Files written before prepend_scheme existed say add_prefix_space.
      STRATA_ASSIGN_OR_RETURN(const bool add_prefix_space, read_bool(spec, "add_prefix_space", true, where));
      scheme = add_prefix_space ? PrependScheme::kAlways : PrependScheme::kNever;
    }
    return Ptr(new MetaspacePreTokenizer(replacement, scheme, split));
  }
  if (type == "Digits") {
    STRATA_ASSIGN_OR_RETURN(const bool individual, read_bool(spec, "individual_digits", false, where));
    return Ptr(
        new CharSplitPreTokenizer(is_numeric, individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous));
  }
  if (type == "Punctuation") {
    STRATA_ASSIGN_OR_RETURN(const SplitBehavior behavior,
                            parse_behavior(spec, "behavior", SplitBehavior::kIsolated, where));
    return Ptr(new CharSplitPreTokenizer(is_punctuation, behavior));
  }
  if (type == "WhitespaceSplit") return Ptr(new CharSplitPreTokenizer(is_whitespace, SplitBehavior::kRemoved));
  if (type == "Whitespace") {
    // HF: split on the inverse of \w+|[^\w\s]+, removing what is left (the whitespace).
    STRATA_ASSIGN_OR_RETURN(Pattern pattern, Pattern::regex(R"(\w+|[^\w\s]+)"));
    return Ptr(new SplitPreTokenizer(std::move(pattern), SplitBehavior::kRemoved, /*invert=*/true));
  }
  if (type == "BertPreTokenizer") {
    std::vector<Ptr> steps;
    steps.push_back(Ptr(new CharSplitPreTokenizer(is_whitespace, SplitBehavior::kRemoved)));
    steps.push_back(Ptr(new CharSplitPreTokenizer(is_punctuation, SplitBehavior::kIsolated)));
    return Ptr(new SequencePreTokenizer(std::move(steps)));
  }
  return unsupported_type(where, type);
}

}  // namespace strata::tokenizer
