// SwiGLU kernels (CPU reference).
#include "kernels/cpu/activation.h"

#include <cmath>

namespace strata::cpu {
namespace {

constexpr int64_t kParallelMinElems = 1 << 15;

inline void silu_mul_row(const float* gate, const float* up, float* out, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

}  // namespace

void silu_and_mul(const float* gate_up, float* out, int num_tokens, int dim) {
  const bool parallel = static_cast<int64_t>(num_tokens) * dim > kParallelMinElems;
#pragma omp parallel for schedule(static) if (parallel)
  for (int t = 0; t < num_tokens; ++t) {
    const float* row = gate_up + static_cast<int64_t>(t) * 2 * dim;
    silu_mul_row(row, row + dim, out + static_cast<int64_t>(t) * dim, dim);
  }
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  constexpr int64_t kChunk = 4096;
  const int64_t num_chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n > kParallelMinElems)
  for (int64_t c = 0; c < num_chunks; ++c) {
    const int64_t begin = c * kChunk;
    const int64_t len = begin + kChunk < n ? kChunk : n - begin;
    silu_mul_row(gate + begin, up + begin, out + begin, len);
  }
}

}  // namespace strata::cpu
