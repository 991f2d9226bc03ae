// Rounding kernel: a grid-stride loop over float4 vectors (the tail one value at a time).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/round.h"

namespace strata::cuda {
namespace {

template <class T>
__device__ __forceinline__ float rounded(float x) {
  return to_float(from_float<T>(x));
}

template <class T>
__global__ void round_to_dtype_kernel(float* __restrict__ values, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t vectors = n / 4;
  auto* v4 = reinterpret_cast<float4*>(values);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < vectors; i += stride) {
    float4 v = v4[i];
    v.x = rounded<T>(v.x);
    v.y = rounded<T>(v.y);
    v.z = rounded<T>(v.z);
    v.w = rounded<T>(v.w);
    v4[i] = v;
  }
  for (int64_t i = vectors * 4 + static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    values[i] = rounded<T>(values[i]);
  }
}

}  // namespace

LaunchStatus round_to_dtype(float* values, int64_t n, DType dtype, cudaStream_t stream) {
  constexpr const char* kKernel = "round_to_dtype_kernel";
  const ShapeArgs shape = {{"n", n}};
  if (n < 0) return invalid_argument(kKernel, dtype, shape, "n must be >= 0");
  if (n == 0 || dtype == DType::kF32) return {};
  if (values == nullptr || !is_aligned_16(values)) {
    return invalid_argument(kKernel, dtype, shape, "values must be set and 16-byte aligned");
  }
  constexpr int kThreads = 256;
  const int64_t blocks = (n / 4 + kThreads - 1) / kThreads + 1;
  const unsigned grid = static_cast<unsigned>(blocks < 4096 ? blocks : 4096);
  if (dtype == DType::kBF16) {
    round_to_dtype_kernel<__nv_bfloat16><<<grid, kThreads, 0, stream>>>(values, n);
  } else {
    round_to_dtype_kernel<__half><<<grid, kThreads, 0, stream>>>(values, n);
  }
  return check_launch(kKernel, dtype, shape);
}

}  // namespace strata::cuda
