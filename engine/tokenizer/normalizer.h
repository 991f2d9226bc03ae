// Normalizers of HF tokenizer.json ("normalizer"): NFC/NFD/NFKC/NFKD, Lowercase, Prepend,
// Replace, Strip, ByteLevel and Sequence, applied to each stretch of text between added tokens.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "engine/core/status.h"

namespace strata::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // `text` is valid UTF-8 and stays so.
  virtual void normalize(std::string& text) const = 0;
};

// `where` names the JSON field for errors ("tokenizer.json: normalizer"). A null spec gives
// a null pointer (no normalization).
Result<std::unique_ptr<Normalizer>> parse_normalizer(const nlohmann::json& spec, const std::string& where);

}  // namespace strata::tokenizer
