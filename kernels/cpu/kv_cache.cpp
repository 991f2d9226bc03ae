// KV-cache write (CPU reference).
#include "kernels/cpu/kv_cache.h"

#include <cstring>

namespace strata::cpu {

void write_kv_cache(const float* key, int64_t key_stride, const float* value, int64_t value_stride,
                    const int64_t* slot_mapping, int num_tokens, int num_kv_heads, int head_dim, float* k_cache,
                    float* v_cache) {
  const int64_t slot_elems = static_cast<int64_t>(num_kv_heads) * head_dim;
  const size_t slot_bytes = static_cast<size_t>(slot_elems) * sizeof(float);
#pragma omp parallel for schedule(static) if (num_tokens * slot_elems > (1 << 16))
  for (int t = 0; t < num_tokens; ++t) {
    const int64_t slot = slot_mapping[t];
    if (slot < 0) continue;
    std::memcpy(k_cache + slot * slot_elems, key + t * key_stride, slot_bytes);
    std::memcpy(v_cache + slot * slot_elems, value + t * value_stride, slot_bytes);
  }
}

}  // namespace strata::cpu
