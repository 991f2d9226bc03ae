// Element types of checkpoints, activations and KV cache, and conversions between them.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace strata {

enum class DType { kF32, kBF16, kF16 };

inline size_t dtype_size(DType t) { return t == DType::kF32 ? 4 : 2; }
std::string_view dtype_name(DType t);

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float f16_to_f32(uint16_t h);

}  // namespace strata
