// KvCacheManager: per-sequence block tables over the BlockPool, with prefix-cache hits.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/kv/block_pool.h"

namespace strata {

class KvCacheManager {
 public:
  KvCacheManager(int num_blocks, int block_size, bool enable_prefix_caching);

  int block_size() const { return pool_.block_size(); }
  int num_blocks() const { return pool_.num_blocks(); }
  int num_free_blocks() const { return pool_.num_free(); }
  bool prefix_caching() const { return enable_prefix_caching_; }

  // Starts a sequence: attaches the longest run of cached full blocks matching `tokens`
  // (never all of them: at least one token is left to compute, so there are logits to
  // sample from). Returns the number of tokens whose KV is already in the cache.
  int begin_sequence(uint64_t seq_id, std::span<const int32_t> tokens);
  // Grows the block table to hold `num_tokens` slots. All or nothing: false (and no change)
  // when the pool lacks free blocks.
  bool reserve(uint64_t seq_id, int num_tokens);
  // Blocks reserve() would have to allocate for `num_tokens` slots.
  int blocks_needed(uint64_t seq_id, int num_tokens) const;
  // Records that the KV of tokens[0, num_computed) is written: full blocks become cacheable.
  void mark_computed(uint64_t seq_id, std::span<const int32_t> tokens, int num_computed);
  // Returns every block of the sequence to the pool (tail first, so it is evicted first).
  void end_sequence(uint64_t seq_id);

  const std::vector<int32_t>& block_table(uint64_t seq_id) const;
  bool has_sequence(uint64_t seq_id) const { return seqs_.count(seq_id) != 0; }
  size_t num_sequences() const { return seqs_.size(); }
  BlockPoolStats stats() const { return pool_.stats(); }
  const BlockPool& pool() const { return pool_; }

 private:
  struct SeqState {
    std::vector<int32_t> block_table;
    int num_hashed_blocks = 0;  // leading full blocks registered in the prefix cache
    uint64_t last_hash = 0;     // chained hash of block num_hashed_blocks - 1
  };
  BlockPool pool_;
  bool enable_prefix_caching_;
  std::unordered_map<uint64_t, SeqState> seqs_;
};

}  // namespace strata
