// Linear layer via OpenBLAS (CPU reference). OpenMP owns the threads: each thread runs a
// single-threaded sgemm/sgemv on its slice of output features. A second, pthread-based BLAS pool
// running between the other kernels' OpenMP regions would make the two pools spin against each
// other for the same cores (the OpenBLAS FAQ advises one pool; see the commit message).
#include "kernels/cpu/linear.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <mutex>

namespace strata::cpu {
namespace {

constexpr int64_t kMinParallelMacs = int64_t{1} << 18;  // below this a GEMM runs on one thread
constexpr int kSliceAlign = 16;                         // output features per slice step

void linear_slice(const float* x, const float* weight, const float* bias, float* y, int num_rows, int in_features,
                  int out_features, int begin, int end) {
  const int width = end - begin;
  if (width <= 0) return;
  const float* w = weight + static_cast<int64_t>(begin) * in_features;
  if (num_rows == 1) {
    // A single row is a matrix-vector product; gemv avoids sgemm's packing.
    cblas_sgemv(CblasRowMajor, CblasNoTrans, width, in_features, 1.0f, w, in_features, x, 1, 0.0f, y + begin, 1);
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, num_rows, width, in_features, 1.0f, x, in_features, w,
                in_features, 0.0f, y + begin, out_features);
  }
  if (bias == nullptr) return;
  for (int r = 0; r < num_rows; ++r) {
    float* row = y + static_cast<int64_t>(r) * out_features;
#pragma omp simd
    for (int i = begin; i < end; ++i) row[i] += bias[i];
  }
}

}  // namespace

void linear(const float* x, const float* weight, const float* bias, float* y, int num_rows, int in_features,
            int out_features) {
  if (num_rows <= 0 || out_features <= 0) return;
  static std::once_flag blas_single_threaded;
  std::call_once(blas_single_threaded, [] { openblas_set_num_threads(1); });

  const int64_t macs = static_cast<int64_t>(num_rows) * in_features * out_features;
  const int max_slices = (out_features + kSliceAlign - 1) / kSliceAlign;
  const int num_threads = macs < kMinParallelMacs ? 1 : std::min(omp_get_max_threads(), max_slices);
  if (num_threads <= 1) {
    linear_slice(x, weight, bias, y, num_rows, in_features, out_features, 0, out_features);
    return;
  }
#pragma omp parallel num_threads(num_threads)
  {
    const int thread = omp_get_thread_num();
    const int threads = omp_get_num_threads();
    const int per_thread = (max_slices + threads - 1) / threads * kSliceAlign;
    const int begin = std::min(out_features, thread * per_thread);
    const int end = std::min(out_features, begin + per_thread);
    linear_slice(x, weight, bias, y, num_rows, in_features, out_features, begin, end);
  }
}

}  // namespace strata::cpu
