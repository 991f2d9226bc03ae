// The SentencePiece (tokenizer.model) implementation of Tokenizer. The .cpp is the only file
// that includes sentencepiece_processor.h (it clashes with abseil headers on Debian).
#pragma once

#include <memory>
#include <string>

#include "engine/core/status.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/tokenizer_config.h"

namespace strata::tokenizer {

Result<std::unique_ptr<Tokenizer>> load_sentencepiece_tokenizer(const std::string& model_path,
                                                                const TokenizerConfig& config);

}  // namespace strata::tokenizer
