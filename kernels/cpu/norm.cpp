// RMSNorm kernels (CPU reference).
#include "kernels/cpu/norm.h"

#include <cmath>

namespace strata::cpu {
namespace {

constexpr int64_t kParallelMinElems = 1 << 15;

inline float inv_rms(const float* x, int dim, float eps) {
  float sum_sq = 0.0f;
#pragma omp simd reduction(+ : sum_sq)
  for (int i = 0; i < dim; ++i) sum_sq += x[i] * x[i];
  return 1.0f / std::sqrt(sum_sq / static_cast<float>(dim) + eps);
}

inline void scale_row(const float* x, const float* weight, float scale, float* out, int dim) {
#pragma omp simd
  for (int i = 0; i < dim; ++i) out[i] = weight[i] * (x[i] * scale);
}

}  // namespace

void rms_norm(const float* x, const float* weight, float* out, int num_rows, int dim, float eps) {
  const bool parallel = static_cast<int64_t>(num_rows) * dim > kParallelMinElems;
#pragma omp parallel for schedule(static) if (parallel)
  for (int r = 0; r < num_rows; ++r) {
    const float* row = x + static_cast<int64_t>(r) * dim;
    scale_row(row, weight, inv_rms(row, dim, eps), out + static_cast<int64_t>(r) * dim, dim);
  }
}

void fused_add_rms_norm(float* residual, const float* x, const float* weight, float* out, int num_rows, int dim,
                        float eps) {
  const bool parallel = static_cast<int64_t>(num_rows) * dim > kParallelMinElems;
#pragma omp parallel for schedule(static) if (parallel)
  for (int r = 0; r < num_rows; ++r) {
    float* res = residual + static_cast<int64_t>(r) * dim;
    const float* in = x + static_cast<int64_t>(r) * dim;
#pragma omp simd
    for (int i = 0; i < dim; ++i) res[i] += in[i];
    scale_row(res, weight, inv_rms(res, dim, eps), out + static_cast<int64_t>(r) * dim, dim);
  }
}

void head_rms_norm(float* x, int num_tokens, int num_heads, int head_dim, int64_t token_stride, const float* weight,
                   float eps) {
  const int64_t num_rows = static_cast<int64_t>(num_tokens) * num_heads;
#pragma omp parallel for schedule(static) if (num_rows * head_dim > kParallelMinElems)
  for (int64_t r = 0; r < num_rows; ++r) {
    float* head = x + (r / num_heads) * token_stride + (r % num_heads) * head_dim;
    scale_row(head, weight, inv_rms(head, head_dim, eps), head, head_dim);
  }
}

}  // namespace strata::cpu
