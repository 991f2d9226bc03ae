// BlockPool implementation: reference counts, two free lists, and the prefix-hash index.
#include "engine/kv/block_pool.h"

#include <cassert>
#include <stdexcept>

namespace strata {

namespace {
inline uint64_t mix64(uint64_t x) {  // splitmix64 finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}
}  // namespace

uint64_t hash_block_tokens(uint64_t parent_hash, std::span<const int32_t> tokens) {
  uint64_t h = mix64(parent_hash ^ 0x9e3779b97f4a7c15ULL);
  for (int32_t t : tokens) h = mix64(h ^ (static_cast<uint64_t>(static_cast<uint32_t>(t)) + 0x632be59bd9b4e019ULL));
  return h;
}

BlockPool::BlockPool(int num_blocks, int block_size) : block_size_(block_size), blocks_(num_blocks) {
  if (num_blocks <= 0 || block_size <= 0) throw std::invalid_argument("BlockPool: sizes must be positive");
  for (int32_t b = 0; b < num_blocks; ++b) push_free(b);
}

void BlockPool::push_free(int32_t block) {
  Block& b = blocks_[block];
  auto& list = b.cached ? free_cached_ : free_uncached_;
  b.free_pos = list.insert(list.end(), block);
  ++num_free_;
}

void BlockPool::pop_free(int32_t block) {
  Block& b = blocks_[block];
  (b.cached ? free_cached_ : free_uncached_).erase(b.free_pos);
  --num_free_;
}

void BlockPool::uncache(int32_t block) {
  Block& b = blocks_[block];
  if (!b.cached) return;
  auto [first, last] = cache_.equal_range(b.hash);
  for (auto it = first; it != last; ++it) {
    if (it->second == block) {
      cache_.erase(it);
      break;
    }
  }
  b.cached = false;
  b.tokens.clear();
  --num_cached_;
}

std::optional<int32_t> BlockPool::allocate() {
  int32_t block;
  if (!free_uncached_.empty()) {
    block = free_uncached_.front();
  } else if (!free_cached_.empty()) {
    block = free_cached_.front();
  } else {
    return std::nullopt;
  }
  pop_free(block);
  uncache(block);
  blocks_[block].ref_count = 1;
  return block;
}

void BlockPool::retain(int32_t block) {
  Block& b = blocks_[block];
  if (b.ref_count == 0) pop_free(block);
  ++b.ref_count;
}

void BlockPool::release(int32_t block) {
  Block& b = blocks_[block];
  assert(b.ref_count > 0 && "BlockPool::release of a free block");
  if (b.ref_count <= 0) throw std::logic_error("BlockPool::release of a free block");
  if (--b.ref_count == 0) push_free(block);
}

std::optional<int32_t> BlockPool::lookup(uint64_t parent_hash, std::span<const int32_t> tokens) {
  ++prefix_queries_;
  const uint64_t h = hash_block_tokens(parent_hash, tokens);
  auto [first, last] = cache_.equal_range(h);
  for (auto it = first; it != last; ++it) {
    const Block& b = blocks_[it->second];
    if (b.parent_hash == parent_hash && std::equal(b.tokens.begin(), b.tokens.end(), tokens.begin(), tokens.end())) {
      ++prefix_hits_;
      return it->second;
    }
  }
  return std::nullopt;
}

void BlockPool::register_full_block(int32_t block, uint64_t parent_hash, std::span<const int32_t> tokens) {
  Block& b = blocks_[block];
  assert(static_cast<int>(tokens.size()) == block_size_);
  if (b.cached) return;
  const uint64_t h = hash_block_tokens(parent_hash, tokens);
  auto [first, last] = cache_.equal_range(h);
  for (auto it = first; it != last; ++it) {
    const Block& other = blocks_[it->second];
    if (other.parent_hash == parent_hash && std::equal(other.tokens.begin(), other.tokens.end(), tokens.begin(), tokens.end())) {
      return;  // the same content is cached in another block already
    }
  }
  b.cached = true;
  b.hash = h;
  b.parent_hash = parent_hash;
  b.tokens.assign(tokens.begin(), tokens.end());
  cache_.emplace(h, block);
  ++num_cached_;
}

BlockPoolStats BlockPool::stats() const {
  BlockPoolStats s;
  s.num_blocks = num_blocks();
  s.num_free = num_free_;
  s.num_used = num_blocks() - num_free_;
  s.num_cached = num_cached_;
  s.num_cached_free = static_cast<int>(free_cached_.size());
  s.prefix_queries = prefix_queries_;
  s.prefix_hits = prefix_hits_;
  return s;
}

}  // namespace strata
