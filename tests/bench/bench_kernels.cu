// Kernels of the benchmarks: 16-byte-vector copies and a hash-based uniform fill.
#include "kernels/cuda/common.cuh"
#include "tests/bench/bench_kernels.h"

namespace strata::bench {
namespace {

constexpr int kCopyThreads = 256;
constexpr int kBlocksPerSm = 8;  // 8 x 256 threads: a full H100/H200 multiprocessor (2048 threads)

// n 16-byte vectors; one per thread.
__global__ void copy_one_vector_kernel(int4* __restrict__ dst, const int4* __restrict__ src, size_t n) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = src[i];
}

// n 16-byte vectors; each thread issues four independent loads before its first store.
__global__ void copy_grid_stride_kernel(int4* __restrict__ dst, const int4* __restrict__ src, size_t n) {
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for (; i + 3 * stride < n; i += 4 * stride) {
    const int4 a = src[i];
    const int4 b = src[i + stride];
    const int4 c = src[i + 2 * stride];
    const int4 d = src[i + 3 * stride];
    dst[i] = a;
    dst[i + stride] = b;
    dst[i + 2 * stride] = c;
    dst[i + 3 * stride] = d;
  }
  for (; i < n; i += stride) dst[i] = src[i];
}

// SplitMix64 finalizer (Steele, Lea, Flood 2014): a counter-based generator, one value per index.
__device__ __forceinline__ uint64_t splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

template <class T>
__global__ void fill_uniform_kernel(T* __restrict__ data, size_t count, float lo, float span, uint64_t seed) {
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const uint64_t bits = splitmix64(seed + 0x9e3779b97f4a7c15ull * (i + 1));
    const float u = float(bits >> 40) * (1.0f / 16777216.0f);  // 24 bits -> [0, 1)
    data[i] = cuda::from_float<T>(lo + span * u);
  }
}

}  // namespace

const char* copy_kernel_name(CopyKernel kernel) {
  return kernel == CopyKernel::kOneVectorPerThread ? "copy_one_vector_kernel" : "copy_grid_stride_kernel";
}

cuda::LaunchStatus copy_vectors(void* dst, const void* src, size_t bytes, CopyKernel kernel, int num_sms,
                                cudaStream_t stream) {
  const char* name = copy_kernel_name(kernel);
  const cuda::ShapeArgs shape = {{"bytes", int64_t(bytes)}, {"num_sms", num_sms}};
  if (bytes % 16 != 0 || !cuda::is_aligned_16(dst) || !cuda::is_aligned_16(src) || num_sms <= 0) {
    return cuda::invalid_argument(name, cuda::DType::kF32, shape,
                                  "need bytes % 16 == 0, aligned pointers, num_sms > 0");
  }
  const size_t n = bytes / 16;
  if (n == 0) return {};
  int4* d = static_cast<int4*>(dst);
  const int4* s = static_cast<const int4*>(src);
  if (kernel == CopyKernel::kOneVectorPerThread) {
    const size_t blocks = (n + kCopyThreads - 1) / kCopyThreads;
    if (blocks > 0x7fffffffu) return cuda::invalid_argument(name, cuda::DType::kF32, shape, "buffer too large");
    copy_one_vector_kernel<<<unsigned(blocks), kCopyThreads, 0, stream>>>(d, s, n);
  } else {
    copy_grid_stride_kernel<<<unsigned(num_sms * kBlocksPerSm), kCopyThreads, 0, stream>>>(d, s, n);
  }
  return cuda::check_launch(name, cuda::DType::kF32, shape);
}

cuda::LaunchStatus fill_uniform(void* data, size_t count, cuda::DType dtype, float lo, float hi, uint64_t seed,
                                cudaStream_t stream) {
  const cuda::ShapeArgs shape = {{"count", int64_t(count)}};
  if (count == 0) return {};
  return cuda::dispatch_dtype(dtype, [&](auto tag) -> cuda::LaunchStatus {
    using T = typename decltype(tag)::type;
    const size_t blocks = (count + 255) / 256;
    const unsigned grid = unsigned(blocks < 65536 ? blocks : 65536);
    fill_uniform_kernel<T><<<grid, 256, 0, stream>>>(static_cast<T*>(data), count, lo, hi - lo, seed);
    return cuda::check_launch("fill_uniform_kernel", dtype, shape);
  });
}

}  // namespace strata::bench
