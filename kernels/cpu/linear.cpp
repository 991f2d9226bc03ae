// Linear layer via OpenBLAS cblas_sgemm (CPU reference).
#include "kernels/cpu/linear.h"

#include <cblas.h>

#include <cstdint>

namespace strata::cpu {

void linear(const float* x, const float* weight, const float* bias, float* y, int num_rows, int in_features,
            int out_features) {
  if (num_rows <= 0 || out_features <= 0) return;
  if (num_rows == 1) {
    // A single row is a matrix-vector product; gemv avoids sgemm's packing overhead.
    cblas_sgemv(CblasRowMajor, CblasNoTrans, out_features, in_features, 1.0f, weight, in_features, x, 1, 0.0f, y, 1);
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, num_rows, out_features, in_features, 1.0f, x, in_features,
                weight, in_features, 0.0f, y, out_features);
  }
  if (bias == nullptr) return;
#pragma omp parallel for schedule(static) if (static_cast <int64_t>(num_rows) * out_features > (1 << 16))
  for (int r = 0; r < num_rows; ++r) {
    float* row = y + static_cast<int64_t>(r) * out_features;
#pragma omp simd
    for (int i = 0; i < out_features; ++i) row[i] += bias[i];
  }
}

}  // namespace strata::cpu
