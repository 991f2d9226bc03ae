// Dummy weights from a counter-based generator: splitmix64 of (tensor key + index), so no
// state is shared between tensors and the values do not depend on the standard library.
#include "engine/model/dummy_weights.h"

#include <algorithm>
#include <cmath>
#include <thread>

namespace strata {
namespace {

// splitmix64 finalizer (Steele, Lea and Flood, "Fast splittable pseudorandom number generators").
uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// FNV-1a: a stable hash of the tensor name (std::hash is not specified across libraries).
uint64_t fnv1a(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  return h;
}

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

}  // namespace

void fill_dummy_tensor(std::string_view name, uint64_t seed, size_t numel, std::vector<float>& out) {
  if (ends_with(name, "norm.weight")) {
    out.assign(numel, 1.0f);
    return;
  }
  out.resize(numel);
  const uint64_t key = splitmix64(seed ^ fnv1a(name));
  // Four 16-bit uniforms u_k in [0, 1) per draw: sum(u_k) - 2 has variance 4/12, so scaling by
  // sqrt(3) gives unit variance.
  constexpr float kInv16 = 1.0f / 65536.0f;
  const float scale = kDummyWeightStd * std::sqrt(3.0f) * kInv16;
  const auto fill = [&out, key, scale](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      const uint64_t r = splitmix64(key + i);
      const uint32_t sum = static_cast<uint32_t>(r & 0xffff) + static_cast<uint32_t>((r >> 16) & 0xffff) +
                           static_cast<uint32_t>((r >> 32) & 0xffff) + static_cast<uint32_t>(r >> 48);
      // sum is in [0, 4 * 65535]; subtract its mean, 2 * 65535.
      out[i] = (static_cast<float>(sum) - 2.0f * 65535.0f) * scale;
    }
  };
  // Value i depends on i alone, so large tensors are filled by every core in slices.
  constexpr size_t kPerThread = size_t{1} << 22;
  const size_t threads = std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()), numel / kPerThread + 1);
  if (threads <= 1) {
    fill(0, numel);
    return;
  }
  std::vector<std::thread> pool;
  const size_t slice = (numel + threads - 1) / threads;
  for (size_t t = 0; t < threads; ++t) pool.emplace_back(fill, t * slice, std::min(numel, (t + 1) * slice));
  for (auto& th : pool) th.join();
}

}  // namespace strata
