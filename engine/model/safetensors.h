// Memory-mapped safetensors checkpoints: one file or shards listed in model.safetensors.index.json.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/dtype.h"
#include "engine/core/status.h"

namespace strata {

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;  // points into the mapped file; not necessarily aligned
  size_t nbytes = 0;
  std::string file;  // file name, for error messages
  int64_t numel() const;
};

class SafetensorsCheckpoint {
 public:
  // Opens every safetensors file of a checkpoint folder (single file or sharded index).
  static Result<std::unique_ptr<SafetensorsCheckpoint>> open(const std::string& model_dir);
  ~SafetensorsCheckpoint();

  const TensorInfo* find(const std::string& name) const;
  std::vector<std::string> names() const;
  // Copies a tensor converted to f32; errors name the tensor and file when it is missing or
  // its shape differs from `expected_shape`.
  Result<std::vector<float>> read_f32(const std::string& name,
                                      const std::vector<int64_t>& expected_shape) const;
  // Sum of the tensors' data sizes (nbytes) over all shards.
  size_t total_bytes() const;

 private:
  SafetensorsCheckpoint() = default;
  struct Mapping;
  std::vector<std::unique_ptr<Mapping>> mappings_;
  std::vector<TensorInfo> tensors_;  // sorted by name
  // What read_f32 errors call the checkpoint: "model.safetensors", the index file, ...
  std::string source_;
};

}  // namespace strata
