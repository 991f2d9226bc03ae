// Dummy weights: deterministic random tensors for `--load-format dummy`, shaped by config.json
// alone, scaled so that activations stay finite through every layer.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace strata {

constexpr float kDummyWeightStd = 0.02f;  // transformers' initializer_range default

// Fills `out` with `numel` values for the tensor `name`: ones for norm weights (names ending in
// "norm.weight"), otherwise approximately normal(0, kDummyWeightStd) (an Irwin-Hall sum of four
// uniforms, bounded at +-3.5 std). Value i depends only on (seed, name, i), so a tensor is the
// same whatever order it is built in and on every platform.
void fill_dummy_tensor(std::string_view name, uint64_t seed, size_t numel, std::vector<float>& out);

// The pieces of fill_dummy_tensor, for a device that makes the values itself: whether `name` is
// a norm weight (all ones), else the key of cpu::dummy_normal (kernels/cpu/dummy_fill.h) whose
// values, with std kDummyWeightStd, fill_dummy_tensor returns.
bool dummy_tensor_is_ones(std::string_view name);
uint64_t dummy_tensor_key(std::string_view name, uint64_t seed);

}  // namespace strata
