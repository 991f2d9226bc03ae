// The exact text one token adds to a text, for logprob entries: decoding a token alone loses
// what tokenizers drop at the start of a text (SentencePiece's and Metaspace's leading space),
// so " there" would read "there" and distinct tokens would collide.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/tokenizer/tokenizer.h"

namespace strata {

class TokenTextDecoder {
 public:
  explicit TokenTextDecoder(const Tokenizer& tokenizer);
  // What decoding the token after other text adds (special tokens: their own text). A token
  // that is part of a UTF-8 character reads as U+FFFD, as the decoder gives it.
  std::string text(int32_t id) const;

 private:
  const Tokenizer& tokenizer_;
  std::vector<int32_t> anchor_;  // ids of a short plain text decoded before the token
  std::string anchor_text_;
};

}  // namespace strata
