// TokenTextDecoder: a token's text as the difference of two decodes.
#include "engine/tokenizer/token_text.h"

namespace strata {

TokenTextDecoder::TokenTextDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {
  anchor_ = tokenizer_.encode("a", /*add_special_tokens=*/false);
  anchor_text_ = tokenizer_.decode(anchor_, false);
}

std::string TokenTextDecoder::text(int32_t id) const {
  const int32_t alone[1] = {id};
  if (anchor_.empty() || tokenizer_.is_special(id)) return tokenizer_.decode(alone, false);
  std::vector<int32_t> ids = anchor_;
  ids.push_back(id);
  const std::string both = tokenizer_.decode(ids, false);
  if (both.size() >= anchor_text_.size() && both.compare(0, anchor_text_.size(), anchor_text_) == 0) {
    return both.substr(anchor_text_.size());
  }
  return tokenizer_.decode(alone, false);  // a decoder that rewrote the anchor: the token alone
}

}  // namespace strata
