// Pre-tokenizers of HF tokenizer.json ("pre_tokenizer"): Split, ByteLevel, Metaspace, Digits,
// Whitespace, WhitespaceSplit, Punctuation, BertPreTokenizer and Sequence. They cut normalized
// text into the words the model tokenizes one by one.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "engine/core/status.h"

namespace strata::tokenizer {

struct PreToken {
  std::string text;
  // Whether this piece starts at offset 0 of the input (Metaspace's prepend_scheme "first").
  bool at_input_start = false;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces every piece by its sub-pieces; empty pieces are dropped.
  virtual void pre_tokenize(std::vector<PreToken>& pieces) const = 0;
};

// How a Split keeps the delimiters it finds (HF SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// A null spec gives a null pointer (the whole piece is one word).
Result<std::unique_ptr<PreTokenizer>> parse_pre_tokenizer(const nlohmann::json& spec, const std::string& where);

// The GPT-2 pre-tokenization regex used by ByteLevel with use_regex.
inline constexpr const char* kGpt2SplitRegex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace strata::tokenizer
