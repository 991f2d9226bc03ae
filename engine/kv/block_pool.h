// BlockPool: fixed-size KV pages with reference counts and a prefix cache of full blocks.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace strata {

struct BlockPoolStats {
  int num_blocks = 0;
  int num_used = 0;         // referenced by at least one sequence
  int num_free = 0;         // unreferenced (includes num_cached_free)
  int num_cached = 0;       // holding a registered prefix hash (used or free)
  int num_cached_free = 0;  // unreferenced but still reusable by a prefix hit
  uint64_t prefix_queries = 0;  // blocks looked up
  uint64_t prefix_hits = 0;     // blocks found
};

// Content hash of a full block: its tokens chained with the hash of the prefix before it,
// so equal hashes mean equal whole prefixes (the tokens are also compared on lookup).
uint64_t hash_block_tokens(uint64_t parent_hash, std::span<const int32_t> tokens);

// Owns block ids [0, num_blocks). A block is free (ref 0) or used (ref > 0). Free blocks
// that hold a cached prefix stay findable until reallocation evicts them, least recently
// freed first; blocks without cached content are handed out before any cached one.
class BlockPool {
 public:
  BlockPool(int num_blocks, int block_size);

  int num_blocks() const { return static_cast<int>(blocks_.size()); }
  int block_size() const { return block_size_; }
  int num_free() const { return num_free_; }

  // Takes a free block (ref 1), evicting its cached content if it had any.
  std::optional<int32_t> allocate();
  void retain(int32_t block);   // one more reference (a prefix hit on a cached block)
  void release(int32_t block);  // one reference less; at zero the block becomes free

  // A cached full block whose content is `tokens` after the prefix `parent_hash`, if any.
  std::optional<int32_t> lookup(uint64_t parent_hash, std::span<const int32_t> tokens);
  // Registers a used, full block's content (no-op if that content is cached already).
  void register_full_block(int32_t block, uint64_t parent_hash, std::span<const int32_t> tokens);

  int ref_count(int32_t block) const { return blocks_[block].ref_count; }
  BlockPoolStats stats() const;

 private:
  struct Block {
    int ref_count = 0;
    bool cached = false;
    uint64_t hash = 0;
    uint64_t parent_hash = 0;
    std::vector<int32_t> tokens;  // content of a cached block
    std::list<int32_t>::iterator free_pos;  // position in its free list while free
  };
  void uncache(int32_t block);
  void push_free(int32_t block);
  void pop_free(int32_t block);

  int block_size_;
  std::vector<Block> blocks_;
  std::list<int32_t> free_uncached_;  // handed out first
  std::list<int32_t> free_cached_;    // LRU order: front is evicted first
  std::unordered_multimap<uint64_t, int32_t> cache_;  // hash -> block
  int num_free_ = 0;
  int num_cached_ = 0;
  uint64_t prefix_queries_ = 0;
  uint64_t prefix_hits_ = 0;
};

}  // namespace strata
