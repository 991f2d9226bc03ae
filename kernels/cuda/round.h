// fp32 values rounded in place to a 16-bit dtype's nearest value (CUDA twin of
// engine/core/dtype.h's f32_to_bf16 / f32_to_f16 and back): the CUDA executor's logits, which
// lm_head computes in fp32, become the bf16/fp16 values transformers and vLLM produce.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/common.h"

namespace strata::cuda {

// values: [n] fp32 (device). DType::kF32 leaves them as they are (and launches nothing).
LaunchStatus round_to_dtype(float* values, int64_t n, DType dtype, cudaStream_t stream);

}  // namespace strata::cuda
