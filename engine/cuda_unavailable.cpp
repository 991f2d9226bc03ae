// make_cuda_executor for builds without nvcc: every CUDA request is a clear error.
#ifndef STRATA_WITH_CUDA
#include "engine/cuda/cuda_executor.h"

namespace strata {

int cuda_device_count() { return 0; }

Result<std::unique_ptr<ModelExecutor>> make_cuda_executor(const std::string&, const ModelConfig&,
                                                          const CudaExecutorOptions&) {
  return unimplemented("this build of strata has no CUDA backend (it was built without nvcc); use --device cpu");
}

}  // namespace strata
#endif
