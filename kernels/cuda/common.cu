// Host helpers of the CUDA launchers: dtype names and launch-failure messages.
#include "kernels/cuda/common.cuh"

namespace strata::cuda {

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "f32";
    case DType::kBF16:
      return "bf16";
    case DType::kF16:
      return "f16";
  }
  return "unknown";
}

std::string shape_string(DType dtype, ShapeArgs shape) {
  std::string out = std::string("dtype=") + dtype_name(dtype);
  for (const auto& [name, value] : shape) {
    out += ' ';
    out += name;
    out += '=';
    out += std::to_string(value);
  }
  return out;
}

LaunchStatus invalid_argument(const char* kernel, DType dtype, ShapeArgs shape, const char* why) {
  return LaunchStatus{cudaErrorInvalidValue, std::string(kernel) + " [" + shape_string(dtype, shape) + "]: " + why};
}

LaunchStatus check_launch(const char* kernel, DType dtype, ShapeArgs shape) {
  const cudaError_t error = cudaGetLastError();
  if (error == cudaSuccess) return {};
  return LaunchStatus{error, std::string(kernel) + " [" + shape_string(dtype, shape) + "]: " + cudaGetErrorName(error) +
                                 ": " + cudaGetErrorString(error)};
}

}  // namespace strata::cuda
