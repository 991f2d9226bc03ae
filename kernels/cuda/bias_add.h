// Bias add on the GPU, in place after a cuBLAS GEMM (QKV bias): the bias epilogue of
// kernels/cpu/linear.h's linear() as a separate op, bf16/fp16/fp32.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/cuda/common.h"

namespace strata::cuda {

// x[r, c] += bias[c] (fp32 add, one rounding to dtype)
// x:    [num_rows, dim] (in/out)
// bias: [dim]
LaunchStatus bias_add(void* x, const void* bias, int num_rows, int dim, DType dtype, cudaStream_t stream);

}  // namespace strata::cuda
