// Device helpers shared by the CUDA kernel families: fp32 conversions of bf16/fp16/fp32,
// 16-byte vectors, warp and block sums, programmatic dependent launch, and the launch checks
// the launchers report through.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

#include "kernels/cuda/common.h"

namespace strata::cuda {

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }

template <class T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
template <>
__device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half_rn(x);
}

// Elements per 16-byte load: 4 fp32, 8 bf16/fp16.
template <class T>
inline constexpr int kVecWidth = 16 / static_cast<int>(sizeof(T));

template <class T, int N>
struct alignas(sizeof(T) * N) Vec {
  T v[N];
};

template <int N, class T>
__device__ __forceinline__ Vec<T, N> load_vec(const T* p) {
  return *reinterpret_cast<const Vec<T, N>*>(p);
}

template <int N, class T>
__device__ __forceinline__ void store_vec(T* p, const Vec<T, N>& v) {
  *reinterpret_cast<Vec<T, N>*>(p) = v;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Sum over the block, returned to every thread. blockDim.x must be a multiple of 32. Ends
// with a barrier so a grid-stride loop may call it again on its next row.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float warp_sums[32];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  v = warp_sum(v);
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  const int num_warps = blockDim.x >> 5;
  v = warp_sum(lane < num_warps ? warp_sums[lane] : 0.0f);
  __syncthreads();
  return v;
}

// Programmatic dependent launch (PDL, sm_90+; CUDA programming guide, "Programmatic Dependent
// Launch and Synchronization"). A kernel launched by launch_pdl may start while the kernel
// before it on the stream still runs, so it must call wait_for_prior_grid() before it reads
// anything an earlier kernel wrote or writes anything an earlier kernel reads; only constants
// (weights) and the step inputs the host copied in before the first kernel may be touched
// before that. Every thread of every launch_pdl kernel waits (or exits) so that its grid
// finishing implies the grid before it finished too, for whatever the stream runs next.
// Both are no-ops in a grid launched without the attribute.
__device__ __forceinline__ void wait_for_prior_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

// Lets the next kernel on the stream, if launched by launch_pdl, be scheduled once every CTA
// of this grid has called this (or exited); it implies nothing about this grid's writes.
__device__ __forceinline__ void launch_dependent_grids() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// Pulls the 128-byte line holding p into L2 (no registers held, no completion to wait for).
__device__ __forceinline__ void prefetch_l2(const void* p) { asm volatile("prefetch.global.L2 [%0];\n" ::"l"(p)); }

// Host side ---------------------------------------------------------------------------------

// Launches kernel<<<grid, block, shared_bytes, stream>>>(args...) as a programmatic dependent
// of the stream's previous kernel (also under stream capture, CUDA >= 12.3). A failure is also
// the runtime's last error, which check_launch reports.
template <class... Params, class... Args>
cudaError_t launch_pdl(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                       Args&&... args) {
  cudaLaunchAttribute attribute[1] = {};
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  config.attrs = attribute;
  config.numAttrs = 1;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

template <class T>
struct TypeTag {
  using type = T;
};

// Calls fn(TypeTag<T>{}) with the device type of dtype; launchers use it to pick one
// template instance per dtype.
template <class Fn>
LaunchStatus dispatch_dtype(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kF32:
      return fn(TypeTag<float>{});
    case DType::kBF16:
      return fn(TypeTag<__nv_bfloat16>{});
    case DType::kF16:
      return fn(TypeTag<__half>{});
  }
  return LaunchStatus{cudaErrorInvalidValue, "unknown dtype"};
}

inline bool is_aligned_16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

using ShapeArgs = std::initializer_list<std::pair<const char*, int64_t>>;

// "dtype=bf16 num_rows=7 dim=4096"
std::string shape_string(DType dtype, ShapeArgs shape);

LaunchStatus invalid_argument(const char* kernel, DType dtype, ShapeArgs shape, const char* why);

// cudaGetLastError after a launch; the message is built only on failure.
LaunchStatus check_launch(const char* kernel, DType dtype, ShapeArgs shape);

// Threads per block for `work` items of one row: a multiple of 32 in [32, max_threads].
inline int threads_for(int64_t work, int max_threads) {
  int64_t threads = (work + 31) / 32 * 32;
  if (threads < 32) threads = 32;
  if (threads > max_threads) threads = max_threads;
  return static_cast<int>(threads);
}

// Grid-stride kernels run at most this many blocks; more rows loop inside the kernel.
inline constexpr int64_t kMaxGridBlocks = 65536;

inline unsigned grid_for(int64_t rows) { return static_cast<unsigned>(rows < kMaxGridBlocks ? rows : kMaxGridBlocks); }

}  // namespace strata::cuda
