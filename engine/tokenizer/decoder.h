// Decoders of tokenizer.json ("decoder"): ByteLevel, Replace, ByteFallback, Fuse, Strip,
// Metaspace and Sequence. They turn token strings back into text.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "engine/core/status.h"

namespace strata::tokenizer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Rewrites the list of token strings (HF Decoder::decode_chain); the caller joins them.
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// A null spec gives a null pointer (tokens are joined with spaces, as HF does).
Result<std::unique_ptr<Decoder>> parse_decoder(const nlohmann::json& spec, const std::string& where);

}  // namespace strata::tokenizer
