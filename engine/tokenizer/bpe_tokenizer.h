// The tokenizer.json (HF tokenizers) implementation of Tokenizer, BPE models only.
#pragma once

#include <memory>
#include <string>

#include "engine/core/status.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/tokenizer_config.h"

namespace strata::tokenizer {

// `json_text` is the content of tokenizer.json; errors are prefixed with "tokenizer.json: ".
Result<std::unique_ptr<Tokenizer>> parse_bpe_tokenizer(const std::string& json_text, const TokenizerConfig& config);

}  // namespace strata::tokenizer
