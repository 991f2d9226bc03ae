// What every CUDA launcher takes and returns: the element type of its tensors and a status
// that names the kernel and the shape it was given when a launch fails.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>

namespace strata::cuda {

// Mirrors strata::DType (engine/core/dtype.h); kernels/ may not include engine headers.
enum class DType { kF32, kBF16, kF16 };

inline size_t dtype_size(DType dtype) { return dtype == DType::kF32 ? 4 : 2; }
const char* dtype_name(DType dtype);

// ok() or a message a caller can log as is, e.g.
// "rms_norm_kernel [dtype=bf16 num_rows=7 dim=4096]: cudaErrorInvalidConfiguration: invalid configuration argument"
struct LaunchStatus {
  cudaError_t error = cudaSuccess;
  std::string message;

  bool ok() const { return error == cudaSuccess; }
};

}  // namespace strata::cuda
