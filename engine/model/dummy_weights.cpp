// Dummy weights from a counter-based generator (kernels/cpu/dummy_fill.h): splitmix64 of
// (tensor key + index), so no state is shared between tensors and the values do not depend on
// the standard library.
#include "engine/model/dummy_weights.h"

#include <algorithm>
#include <thread>

#include "kernels/cpu/dummy_fill.h"

namespace strata {
namespace {

// FNV-1a: a stable hash of the tensor name (std::hash is not specified across libraries).
uint64_t fnv1a(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace

bool dummy_tensor_is_ones(std::string_view name) {
  constexpr std::string_view kSuffix = "norm.weight";
  return name.size() >= kSuffix.size() && name.substr(name.size() - kSuffix.size()) == kSuffix;
}

uint64_t dummy_tensor_key(std::string_view name, uint64_t seed) { return cpu::splitmix64(seed ^ fnv1a(name)); }

void fill_dummy_tensor(std::string_view name, uint64_t seed, size_t numel, std::vector<float>& out) {
  if (dummy_tensor_is_ones(name)) {
    out.assign(numel, 1.0f);
    return;
  }
  out.resize(numel);
  const uint64_t key = dummy_tensor_key(name, seed);
  const auto fill = [&out, key](size_t begin, size_t end) {
    cpu::dummy_normal(key, kDummyWeightStd, begin, end, out.data() + begin);
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
