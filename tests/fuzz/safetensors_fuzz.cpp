// Fuzzes the safetensors reader (engine/model/safetensors): the input is written as a checkpoint
// folder's model.safetensors, opened (header length, JSON header, dtypes, shapes, data offsets
// against the file size), and every tensor it accepts is read back converted to f32.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "engine/model/safetensors.h"
#include "tests/temp_dir.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const strata::testing::TempDir dir;  // one per fuzzing process; readers take paths
  dir.write("model.safetensors", std::string(reinterpret_cast<const char*>(data), size));
  auto checkpoint = strata::SafetensorsCheckpoint::open(dir.str());
  if (!checkpoint.ok()) return 0;
  size_t total = 0;
  for (const std::string& name : (*checkpoint)->names()) {
    const strata::TensorInfo* info = (*checkpoint)->find(name);
    if (!info || info->numel() < 0) std::abort();
    if (info->nbytes != static_cast<size_t>(info->numel()) * strata::dtype_size(info->dtype)) std::abort();
    if (info->nbytes > size) std::abort();  // a view into the file cannot be larger than it
    total += info->nbytes;
    auto values = (*checkpoint)->read_f32(name, info->shape);
    if (!values.ok() || values->size() != static_cast<size_t>(info->numel())) std::abort();
  }
  if (total != (*checkpoint)->total_bytes()) std::abort();
  return 0;
}
