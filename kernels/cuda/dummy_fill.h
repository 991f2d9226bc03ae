// Dummy weights made on the GPU (CUDA twin of kernels/cpu/dummy_fill.h): the same values,
// rounded once to the tensor's dtype, so `--load-format dummy` needs no host memory or copy.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/common.h"

namespace strata::cuda {

// out[i] = cpu::dummy_normal's value i of `key` with std_dev, for i in [0, numel).
LaunchStatus dummy_normal(uint64_t key, float std_dev, size_t numel, void* out, DType dtype, cudaStream_t stream);

// out[i] = value, for i in [0, numel) (norm weights are ones).
LaunchStatus fill_constant(float value, size_t numel, void* out, DType dtype, cudaStream_t stream);

}  // namespace strata::cuda
