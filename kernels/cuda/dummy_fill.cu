// Dummy fill kernels: grid-stride loops, one value per thread and step, computed as the CPU
// twin (kernels/cpu/dummy_fill.cpp) computes it, then rounded to T.
#include "kernels/cpu/dummy_fill.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/dummy_fill.h"

namespace strata::cuda {
namespace {

__device__ __forceinline__ uint64_t mix(uint64_t x) {  // cpu::splitmix64 on the device
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

template <class T>
__global__ void dummy_normal_kernel(uint64_t key, float scale, size_t numel, T* __restrict__ out) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < numel; i += stride) {
    const uint64_t r = mix(key + i);
    const uint32_t sum = static_cast<uint32_t>(r & 0xffff) + static_cast<uint32_t>((r >> 16) & 0xffff) +
                         static_cast<uint32_t>((r >> 32) & 0xffff) + static_cast<uint32_t>(r >> 48);
    out[i] = from_float<T>(__fmul_rn(__fsub_rn(static_cast<float>(sum), 2.0f * 65535.0f), scale));
  }
}

template <class T>
__global__ void fill_constant_kernel(float value, size_t numel, T* __restrict__ out) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  const T v = from_float<T>(value);
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < numel; i += stride) out[i] = v;
}

constexpr int kThreads = 256;

unsigned blocks_for(size_t numel) {
  const size_t blocks = (numel + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 8192 ? blocks : 8192);
}

}  // namespace

LaunchStatus dummy_normal(uint64_t key, float std_dev, size_t numel, void* out, DType dtype, cudaStream_t stream) {
  constexpr const char* kKernel = "dummy_normal_kernel";
  const ShapeArgs shape = {{"numel", static_cast<int64_t>(numel)}};
  if (numel == 0) return {};
  if (out == nullptr) return invalid_argument(kKernel, dtype, shape, "out must be set");
  const float scale = cpu::dummy_normal_scale(std_dev);
  return dispatch_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    dummy_normal_kernel<T><<<blocks_for(numel), kThreads, 0, stream>>>(key, scale, numel, static_cast<T*>(out));
    return check_launch(kKernel, dtype, shape);
  });
}

LaunchStatus fill_constant(float value, size_t numel, void* out, DType dtype, cudaStream_t stream) {
  constexpr const char* kKernel = "fill_constant_kernel";
  const ShapeArgs shape = {{"numel", static_cast<int64_t>(numel)}};
  if (numel == 0) return {};
  if (out == nullptr) return invalid_argument(kKernel, dtype, shape, "out must be set");
  return dispatch_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    fill_constant_kernel<T><<<blocks_for(numel), kThreads, 0, stream>>>(value, numel, static_cast<T*>(out));
    return check_launch(kKernel, dtype, shape);
  });
}

}  // namespace strata::cuda
