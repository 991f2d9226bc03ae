// What strata reads from tokenizer_config.json (and chat_template.jinja): special token
// strings, BOS/EOS rules, the chat template and transformers' decode clean-up flag.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/core/status.h"
#include "engine/tokenizer/added_vocabulary.h"

namespace strata::tokenizer {

struct TokenizerConfig {
  bool present = false;  // whether tokenizer_config.json exists
  std::string tokenizer_class;
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  std::optional<bool> add_bos_token;  // nullopt: not written in the file
  std::optional<bool> add_eos_token;
  bool clean_up_tokenization_spaces = false;
  std::string chat_template;
  // "added_tokens_decoder": tokens split out of the input before the model tokenizes it (what
  // transformers' slow and SentencePiece-based tokenizers do with <s>, <|user|>, ...).
  std::vector<AddedToken> added_tokens;
};

// Reads `model_dir`/tokenizer_config.json; a missing file gives the defaults (present = false),
// a malformed one an error naming the file and field.
Result<TokenizerConfig> read_tokenizer_config(const std::string& model_dir);

// transformers' clean_up_tokenization: removes the space before punctuation and English
// contractions (" ." -> ".", " n't" -> "n't", ...).
std::string clean_up_tokenization(std::string text);

// The whole content of a file, or an error naming it.
Result<std::string> read_file(const std::string& path);

}  // namespace strata::tokenizer
