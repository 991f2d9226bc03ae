// Device kernels the benchmarks need: a device-to-device copy in 16-byte vectors (the memory
// bandwidth ceiling) and a random fill (benchmarks never run on zeros).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/common.h"

namespace strata::bench {

enum class CopyKernel {
  kOneVectorPerThread,  // one 16-byte load and store per thread, a grid covering the buffer
  kGridStrideUnrolled,  // a persistent grid (blocks_per_sm per SM), four 16-byte loads in flight per thread
};

const char* copy_kernel_name(CopyKernel kernel);

// dst[0, bytes) = src[0, bytes). bytes % 16 == 0; src and dst 16-byte aligned and disjoint.
cuda::LaunchStatus copy_vectors(void* dst, const void* src, size_t bytes, CopyKernel kernel, int num_sms,
                                cudaStream_t stream);

// data[i] = lo + (hi - lo) * u_i in dtype, u_i in [0, 1) from a hash of (seed, i): the same seed
// gives the same values on every run.
cuda::LaunchStatus fill_uniform(void* data, size_t count, cuda::DType dtype, float lo, float hi, uint64_t seed,
                                cudaStream_t stream);

}  // namespace strata::bench
