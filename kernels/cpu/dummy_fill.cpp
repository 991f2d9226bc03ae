// Dummy tensor values: see dummy_fill.h.
#include "kernels/cpu/dummy_fill.h"

namespace strata::cpu {

void dummy_normal(uint64_t key, float std_dev, size_t begin, size_t end, float* out) {
  const float scale = dummy_normal_scale(std_dev);
  for (size_t i = begin; i < end; ++i) {
    const uint64_t r = splitmix64(key + i);
    const uint32_t sum = static_cast<uint32_t>(r & 0xffff) + static_cast<uint32_t>((r >> 16) & 0xffff) +
                         static_cast<uint32_t>((r >> 32) & 0xffff) + static_cast<uint32_t>(r >> 48);
    out[i - begin] = (static_cast<float>(sum) - 2.0f * 65535.0f) * scale;
  }
}

}  // namespace strata::cpu
