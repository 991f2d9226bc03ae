// The CUDA backend as a ModelExecutor: bf16 (or fp16) weights and paged KV cache on one GPU,
// GEMMs through cuBLASLt, the kernels of kernels/cuda; logits (the model dtype's values, in
// fp32) are sampled on the GPU, or come back to the host for forward().
// This header needs no CUDA headers; builds without CUDA get make_cuda_executor returning an
// error and cuda_device_count() == 0 (engine/cuda_unavailable.cpp).
#pragma once

#include <memory>
#include <string>

#include "engine/core/status.h"
#include "engine/model/load_format.h"
#include "engine/model/model_config.h"
#include "engine/model/model_executor.h"

namespace strata {

struct CudaExecutorOptions {
  int device_index = 0;
  int block_size = 16;
  int num_kv_blocks = 0;  // 0: as many as fit under gpu_memory_utilization, up to max_kv_blocks
  int max_kv_blocks = 0;  // 0: no cap
  double gpu_memory_utilization = 0.90;
  // Weights, activations and KV cache: "auto" (float16 checkpoints in fp16, the rest in bf16),
  // "bfloat16" or "float16".
  std::string dtype = "auto";
  bool cuda_graphs = true;  // replay decode steps from captured CUDA graphs (false: eager launches)
  int max_num_batched_tokens = 2048;  // activations are sized for the largest step
  int max_num_seqs = 256;
  int max_model_len = 0;
  ModelLoadOptions load;
};

// CUDA devices this process can use (0 without a driver, a device, or CUDA in this build).
int cuda_device_count();

// Loads the model onto the GPU, sizes the activation workspace for the largest step, then
// gives the KV cache what is left under gpu_memory_utilization. A model that does not fit
// fails with the numbers.
Result<std::unique_ptr<ModelExecutor>> make_cuda_executor(const std::string& model_dir, const ModelConfig& config,
                                                          const CudaExecutorOptions& options);

}  // namespace strata
