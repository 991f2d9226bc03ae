// Embedding lookup: the first op of every decoder, a row gather from the token table.
#pragma once

#include <cstdint>

namespace strata::cpu {

// token_ids: [num_tokens], each in [0, vocab_size) (callers validate)
// embedding: [vocab_size, hidden_size]
// out:       [num_tokens, hidden_size]
void embedding_lookup(const int32_t* token_ids, int num_tokens, const float* embedding, int hidden_size, float* out);

}  // namespace strata::cpu
