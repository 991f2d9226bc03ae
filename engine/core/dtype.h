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

// Round to nearest even, as torch's .to(bfloat16) / .to(float16); NaN stays NaN, overflow
// gives infinity.
uint16_t f32_to_bf16(float f);
uint16_t f32_to_f16(float f);

}  // namespace strata
