// Embedding lookup (CPU reference).
#include "kernels/cpu/embedding.h"

#include <cstring>

namespace strata::cpu {

void embedding_lookup(const int32_t* token_ids, int num_tokens, const float* embedding, int hidden_size, float* out) {
  const size_t row_bytes = static_cast<size_t>(hidden_size) * sizeof(float);
  const bool parallel = static_cast<int64_t>(num_tokens) * hidden_size > (1 << 16);
#pragma omp parallel for schedule(static) if (parallel)
  for (int t = 0; t < num_tokens; ++t) {
    std::memcpy(out + static_cast<int64_t>(t) * hidden_size,
                embedding + static_cast<int64_t>(token_ids[t]) * hidden_size, row_bytes);
  }
}

}  // namespace strata::cpu
