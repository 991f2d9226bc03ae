#include "kernels/cuda/common.cuh"
#include "tests/kernels/cuda/pdl_spin.h"

namespace strata::test {
namespace {

__device__ __forceinline__ uint64_t global_ns() {
  uint64_t now;
  asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(now));
  return now;
}

__global__ void pdl_spin_kernel(uint64_t nanoseconds, uint64_t* end_ns) {
  cuda::launch_dependent_grids();
  const uint64_t start = global_ns();
  uint64_t now = start;
  while (now - start < nanoseconds) now = global_ns();
  *end_ns = now;
}

__global__ void pdl_timestamps_kernel(uint64_t* times_ns) {
  const uint64_t before = global_ns();
  cuda::wait_for_prior_grid();
  times_ns[1] = global_ns();
  times_ns[0] = before;
}

}  // namespace

cudaError_t launch_pdl_spin(cudaStream_t stream, int microseconds, uint64_t* end_ns) {
  pdl_spin_kernel<<<1, 1, 0, stream>>>(static_cast<uint64_t>(microseconds) * 1000u, end_ns);
  return cudaGetLastError();
}

cudaError_t launch_pdl_timestamps(cudaStream_t stream, uint64_t* times_ns) {
  return cuda::launch_pdl(pdl_timestamps_kernel, dim3(1), dim3(1), 0, stream, times_ns);
}

}  // namespace strata::test
