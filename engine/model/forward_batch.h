// ForwardBatch: the ragged batch one engine step runs (prefill chunks and decodes together).
#pragma once

#include <cstdint>
#include <vector>

namespace strata {

// Sequence s owns new tokens [query_start[s], query_start[s+1]) of the flat arrays. Its KV
// cache holds context_lens[s] tokens after this step (the cached prefix plus the new ones);
// the new tokens occupy cache slots [context_lens[s] - n_new, context_lens[s]). Slot t lives
// in block block_tables[s][t / block_size] at offset t % block_size.
struct ForwardBatch {
  std::vector<int32_t> token_ids;     // [num_tokens]
  std::vector<int32_t> positions;     // [num_tokens]  RoPE positions
  std::vector<int32_t> query_start;   // [num_seqs + 1]
  std::vector<int32_t> context_lens;  // [num_seqs]
  std::vector<std::vector<int32_t>> block_tables;  // [num_seqs][blocks]
  std::vector<int32_t> logits_indices;  // rows (token indices) whose logits are returned, in order

  int num_tokens() const { return static_cast<int>(token_ids.size()); }
  int num_seqs() const { return static_cast<int>(context_lens.size()); }
};

}  // namespace strata
