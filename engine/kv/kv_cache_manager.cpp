// KvCacheManager implementation.
#include "engine/kv/kv_cache_manager.h"

#include <stdexcept>

namespace strata {

KvCacheManager::KvCacheManager(int num_blocks, int block_size, bool enable_prefix_caching)
    : pool_(num_blocks, block_size), enable_prefix_caching_(enable_prefix_caching) {}

int KvCacheManager::begin_sequence(uint64_t seq_id, std::span<const int32_t> tokens) {
  auto [it, inserted] = seqs_.try_emplace(seq_id);
  if (!inserted) throw std::logic_error("KvCacheManager::begin_sequence: sequence exists");
  if (!enable_prefix_caching_ || tokens.empty()) return 0;
  SeqState& seq = it->second;
  const int bs = block_size();
  const int max_blocks = static_cast<int>((tokens.size() - 1) / bs);  // leave >= 1 token to compute
  uint64_t parent = 0;
  for (int i = 0; i < max_blocks; ++i) {
    auto block_tokens = tokens.subspan(static_cast<size_t>(i) * bs, bs);
    auto hit = pool_.lookup(parent, block_tokens);
    if (!hit) break;
    pool_.retain(*hit);
    seq.block_table.push_back(*hit);
    parent = hash_block_tokens(parent, block_tokens);
  }
  seq.num_hashed_blocks = static_cast<int>(seq.block_table.size());
  seq.last_hash = parent;
  return seq.num_hashed_blocks * bs;
}

int KvCacheManager::blocks_needed(uint64_t seq_id, int num_tokens) const {
  const auto& seq = seqs_.at(seq_id);
  const int want = (num_tokens + block_size() - 1) / block_size();
  return std::max(0, want - static_cast<int>(seq.block_table.size()));
}

bool KvCacheManager::reserve(uint64_t seq_id, int num_tokens) {
  auto& seq = seqs_.at(seq_id);
  const int need = blocks_needed(seq_id, num_tokens);
  if (need > pool_.num_free()) return false;
  for (int i = 0; i < need; ++i) seq.block_table.push_back(*pool_.allocate());
  return true;
}

void KvCacheManager::mark_computed(uint64_t seq_id, std::span<const int32_t> tokens, int num_computed) {
  if (!enable_prefix_caching_) return;
  auto& seq = seqs_.at(seq_id);
  const int bs = block_size();
  const int full = std::min(num_computed / bs, static_cast<int>(seq.block_table.size()));
  for (int i = seq.num_hashed_blocks; i < full; ++i) {
    auto block_tokens = tokens.subspan(static_cast<size_t>(i) * bs, bs);
    pool_.register_full_block(seq.block_table[i], seq.last_hash, block_tokens);
    seq.last_hash = hash_block_tokens(seq.last_hash, block_tokens);
  }
  seq.num_hashed_blocks = std::max(seq.num_hashed_blocks, full);
}

void KvCacheManager::end_sequence(uint64_t seq_id) {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return;
  auto& table = it->second.block_table;
  for (auto b = table.rbegin(); b != table.rend(); ++b) pool_.release(*b);
  seqs_.erase(it);
}

const std::vector<int32_t>& KvCacheManager::block_table(uint64_t seq_id) const {
  return seqs_.at(seq_id).block_table;
}

}  // namespace strata
