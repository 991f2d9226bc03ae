// KvCacheStorage: the paged K/V memory of every layer (CPU backend: fp32 host arrays).
#pragma once

#include <cstddef>
#include <vector>

namespace strata {

// k(layer), v(layer): [num_blocks, block_size, num_kv_heads, head_dim]
class KvCacheStorage {
 public:
  KvCacheStorage(int num_layers, int num_blocks, int block_size, int num_kv_heads, int head_dim)
      : num_layers_(num_layers), num_blocks_(num_blocks), block_size_(block_size),
        num_kv_heads_(num_kv_heads), head_dim_(head_dim),
        layer_elems_(static_cast<size_t>(num_blocks) * block_size * num_kv_heads * head_dim),
        k_(layer_elems_ * num_layers), v_(layer_elems_ * num_layers) {}

  float* k(int layer) { return k_.data() + layer * layer_elems_; }
  float* v(int layer) { return v_.data() + layer * layer_elems_; }
  int num_layers() const { return num_layers_; }
  int num_blocks() const { return num_blocks_; }
  int block_size() const { return block_size_; }
  int num_kv_heads() const { return num_kv_heads_; }
  int head_dim() const { return head_dim_; }

 private:
  int num_layers_, num_blocks_, block_size_, num_kv_heads_, head_dim_;
  size_t layer_elems_;
  std::vector<float> k_, v_;
};

}  // namespace strata
