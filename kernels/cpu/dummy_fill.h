// Dummy tensor values from a counter-based generator (splitmix64 of key + index), the CPU twin
// of kernels/cuda/dummy_fill.h: value i depends only on (key, i), so a tensor can be made in
// slices, in any order, on either device, with the same bits.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace strata::cpu {

// splitmix64 finalizer (Steele, Lea and Flood, "Fast splittable pseudorandom number generators").
constexpr uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Value i = (u_0 + u_1 + u_2 + u_3 - 2 * 65535) * scale, the u_k the four 16-bit quarters of
// splitmix64(key + i): an Irwin-Hall sum, approximately normal, bounded at +-3.46 std. The sum
// minus its mean is an exact float, so one rounding (the product) makes the value.
inline float dummy_normal_scale(float std_dev) { return std_dev * std::sqrt(3.0f) * (1.0f / 65536.0f); }

// out[i - begin] = value i, for i in [begin, end), with standard deviation std_dev.
void dummy_normal(uint64_t key, float std_dev, size_t begin, size_t end, float* out);

}  // namespace strata::cpu
