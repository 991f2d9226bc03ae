// Linear layers on the GPU through cuBLASLt: y = x W^T (+ bias), the CUDA twin of
// kernels/cpu/linear.h, with one handle, one workspace and a per-shape algorithm cache.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>

#include "kernels/cuda/common.h"

struct cublasLtContext;  // cublasLtHandle_t points to one (cublasLt.h stays out of this header)

namespace strata::cuda {

// One cuBLASLt handle + workspace per stream user (the engine); not thread-safe. Every call
// shares one workspace, so calls on different streams must be ordered by the caller (events)
// or use separate contexts. The handle belongs to the device current at create().
class GemmContext {
 public:
  static LaunchStatus create(std::unique_ptr<GemmContext>* out, size_t workspace_bytes = 32u << 20);
  ~GemmContext();
  GemmContext(const GemmContext&) = delete;
  GemmContext& operator=(const GemmContext&) = delete;

  // y[num_rows, out_features] = x[num_rows, in_features] · W^T (+ bias[out_features]),
  // W row-major [out_features, in_features] as in HF checkpoints; x, W, bias, y in `dtype`
  // (bf16 or f16), fp32 accumulation (CUBLAS_COMPUTE_32F), output rounded to dtype.
  // x rows are contiguous (lda = in_features); y may not alias x. bias may be nullptr.
  // num_rows == 0 is a no-op. Asynchronous on `stream`; capturable into a CUDA graph once the
  // shape's plan is cached (the first call of a shape queries cuBLASLt's heuristic on the host).
  LaunchStatus linear(const void* x, const void* weight, const void* bias, void* y, int num_rows, int in_features,
                      int out_features, DType dtype, cudaStream_t stream);
  // Same with an fp32 output (for the final logits): y is float*.
  LaunchStatus linear_f32_out(const void* x, const void* weight, float* y, int num_rows, int in_features,
                              int out_features, DType dtype, cudaStream_t stream);

  // out[num_rows, inter] = silu(g) * u with [g | u] = x · W^T, W [2 * inter, in_features] the
  // fused [gate_proj; up_proj] rows, rounded exactly as linear() into gate_up followed by
  // silu_and_mul() (kernels/cuda/activation.h), which is what more than one row runs
  // (gate_up: [num_rows, 2 * inter] scratch; the one-row path leaves it alone, may be nullptr). One
  // row runs one GEMV that applies SwiGLU to each (gate, up) pair it computes, bit-identical to
  // those two launches. out may not alias x or weight.
  LaunchStatus linear_silu_and_mul(const void* x, const void* weight, void* gate_up, void* out, int num_rows,
                                   int in_features, int inter, DType dtype, cudaStream_t stream);

  size_t workspace_bytes() const { return workspace_bytes_; }
  // Shapes whose descriptors and algorithm are cached (for tests and logs).
  size_t num_cached_plans() const;

 private:
  struct Plan;
  struct PlanCache;

  GemmContext();
  LaunchStatus matmul(const void* x, const void* weight, const void* bias, void* y, int num_rows, int in_features,
                      int out_features, DType dtype, DType out_dtype, cudaStream_t stream);

  cublasLtContext* handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  std::unique_ptr<PlanCache> plans_;
};

}  // namespace strata::cuda
