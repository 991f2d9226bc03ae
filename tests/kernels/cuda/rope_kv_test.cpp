// Tests kernels/cuda/rope_kv.cu, the fused RoPE + KV-cache write: bit for bit what rope_neox
// then write_kv_cache (kernels/cuda) produce, and against the CPU twins composed the same way
// (kernels/cpu/rope.cpp within the 16-bit rounding bound, kernels/cpu/kv_cache.cpp exactly on
// the kernel's own rotated k).
#include "kernels/cuda/rope_kv.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "kernels/cpu/kv_cache.h"
#include "kernels/cpu/rope.h"
#include "kernels/cuda/kv_cache.h"
#include "kernels/cuda/rope.h"
#include "tests/kernels/cuda/cuda_test_util.h"

namespace strata {
namespace {

using test::CudaKernelTest;
using test::DeviceBuffer;
using test::DType;

struct RopeKvShape {
  int tokens, q_heads, kv_heads, head_dim, num_blocks, block_size;
};

// The bytes a GPU cache must hold: the CPU twin's cache (NaN = never written) in the dtype,
// with unwritten elements as the 0xFF poison.
std::vector<uint8_t> expected_cache_bytes(const std::vector<float>& cpu_cache, DType dtype) {
  std::vector<uint8_t> bytes = test::encode(cpu_cache, dtype);
  const size_t elem = cuda::dtype_size(dtype);
  for (size_t i = 0; i < cpu_cache.size(); ++i) {
    if (std::isnan(cpu_cache[i])) std::fill_n(bytes.begin() + i * elem, elem, uint8_t{0xFF});
  }
  return bytes;
}

// Index of the first differing element of two byte buffers, or -1.
int64_t first_difference(const std::vector<uint8_t>& actual, const std::vector<uint8_t>& expected, size_t elem) {
  if (actual.size() != expected.size()) return 0;
  for (size_t i = 0; i < actual.size(); i += elem) {
    if (!std::equal(actual.begin() + i, actual.begin() + i + elem, expected.begin() + i)) return int64_t(i / elem);
  }
  return -1;
}

class RopeAndWriteKvCuda : public CudaKernelTest {
 protected:
  // A fused [q | k | v] buffer of `tokens` rows; slots distinct and random, every fifth token
  // skipped (-1) and, from 3 tokens on, token 2 pointed past the cache (the GPU kernels skip
  // it; the CPU twin is given -1 there).
  void check(std::mt19937_64& rng, const RopeKvShape& s) {
    SCOPED_TRACE(std::to_string(s.tokens) + " tokens, " + std::to_string(s.q_heads) + "/" + std::to_string(s.kv_heads) +
                 " heads of " + std::to_string(s.head_dim));
    const int64_t num_slots = int64_t(s.num_blocks) * s.block_size;
    ASSERT_LE(s.tokens, num_slots);
    const int64_t slot_elems = int64_t(s.kv_heads) * s.head_dim;
    const int64_t stride = int64_t(s.q_heads + 2 * s.kv_heads) * s.head_dim;
    const int64_t k_offset = int64_t(s.q_heads) * s.head_dim;
    const int64_t v_offset = k_offset + slot_elems;
    const auto qkv = test::round_to(test::random_vector(rng, size_t(s.tokens) * stride, -2, 2), dtype());
    std::vector<int32_t> positions(s.tokens);
    for (auto& p : positions) p = test::random_int(rng, 0, 131071);
    positions[0] = 0;
    std::vector<float> inv_freq(s.head_dim / 2);
    cpu::rope_inv_freq(s.head_dim, 500000.0f, inv_freq.data());
    cpu::rope_llama3_scale(inv_freq.data(), s.head_dim / 2, 8.0f, 1.0f, 4.0f, 8192);
    std::vector<int64_t> slots(num_slots);
    std::iota(slots.begin(), slots.end(), int64_t{0});
    std::shuffle(slots.begin(), slots.end(), rng);
    std::vector<int64_t> slot_mapping(slots.begin(), slots.begin() + s.tokens);
    for (int t = 0; t < s.tokens; t += 5) slot_mapping[t] = -1;
    std::vector<int64_t> cpu_slot_mapping = slot_mapping;
    if (s.tokens > 2) {
      slot_mapping[2] = num_slots + 3;
      cpu_slot_mapping[2] = -1;
    }

    const size_t elem = cuda::dtype_size(dtype());
    const size_t cache_bytes = size_t(num_slots) * slot_elems * elem;
    DeviceBuffer d_fused = test::to_device(qkv, dtype());
    DeviceBuffer d_separate = test::to_device(qkv, dtype());
    DeviceBuffer d_positions(positions.size() * sizeof(int32_t));
    DeviceBuffer d_inv_freq(inv_freq.size() * sizeof(float));
    DeviceBuffer d_slots(slot_mapping.size() * sizeof(int64_t));
    DeviceBuffer d_k_cache(cache_bytes), d_v_cache(cache_bytes), d_k_ref(cache_bytes), d_v_ref(cache_bytes);
    ASSERT_TRUE(d_fused.ok() && d_separate.ok() && d_positions.ok() && d_inv_freq.ok() && d_slots.ok() &&
                d_k_cache.ok() && d_v_cache.ok() && d_k_ref.ok() && d_v_ref.ok());
    STRATA_ASSERT_CUDA(d_positions.upload(positions));
    STRATA_ASSERT_CUDA(d_inv_freq.upload(inv_freq));
    STRATA_ASSERT_CUDA(d_slots.upload(slot_mapping));
    for (DeviceBuffer* cache : {&d_k_cache, &d_v_cache, &d_k_ref, &d_v_ref}) STRATA_ASSERT_CUDA(cache->poison());
    auto at = [elem](const DeviceBuffer& b, int64_t offset) { return b.as<uint8_t>() + offset * int64_t(elem); };

    STRATA_ASSERT_LAUNCH(cuda::rope_and_write_kv(d_fused.get(), stride, s.q_heads, at(d_fused, k_offset), stride,
                                                 at(d_fused, v_offset), stride, s.kv_heads, d_positions.as<int32_t>(),
                                                 d_slots.as<int64_t>(), s.tokens, s.head_dim, d_inv_freq.as<float>(),
                                                 d_k_cache.get(), d_v_cache.get(), num_slots, dtype(), stream_));
    STRATA_ASSERT_LAUNCH(cuda::rope_neox(d_separate.get(), stride, s.q_heads, at(d_separate, k_offset), stride,
                                         s.kv_heads, d_positions.as<int32_t>(), s.tokens, s.head_dim,
                                         d_inv_freq.as<float>(), dtype(), stream_));
    STRATA_ASSERT_LAUNCH(cuda::write_kv_cache(at(d_separate, k_offset), stride, at(d_separate, v_offset), stride,
                                              d_slots.as<int64_t>(), s.tokens, s.kv_heads, s.head_dim, d_k_ref.get(),
                                              d_v_ref.get(), num_slots, dtype(), stream_));
    STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));

    // Bit for bit the two launches it replaces.
    const auto fused_bytes = d_fused.download();
    const auto k_cache_bytes = d_k_cache.download();
    const auto v_cache_bytes = d_v_cache.download();
    EXPECT_EQ(first_difference(fused_bytes, d_separate.download(), elem), -1) << "q/k/v differ from rope_neox";
    EXPECT_EQ(first_difference(k_cache_bytes, d_k_ref.download(), elem), -1) << "k_cache differs from write_kv_cache";
    EXPECT_EQ(first_difference(v_cache_bytes, d_v_ref.download(), elem), -1) << "v_cache differs from write_kv_cache";

    // The CPU twins: the fp32 rotation (within fp32 reordering, or the rounding bound of the
    // 16-bit rotation, 5 roundings of at most u each over |x| <= 2), v unchanged, and the cache
    // write of the kernel's own rotated rows exactly.
    const std::vector<float> actual = test::decode(fused_bytes, dtype());
    std::vector<float> rotated = qkv;
    cpu::rope_neox(rotated.data(), stride, s.q_heads, rotated.data() + k_offset, stride, s.kv_heads, positions.data(),
                   s.tokens, s.head_dim, inv_freq.data());
    const float atol = dtype() == DType::kF32 ? tol().atol : 12.0f * test::unit_roundoff(dtype());
    EXPECT_TRUE(test::all_close(actual, rotated, atol, dtype() == DType::kF32 ? tol().rtol : 0.0f));
    for (int t = 0; t < s.tokens; ++t) {
      for (int64_t i = v_offset; i < stride; ++i) {
        ASSERT_EQ(actual[t * stride + i], qkv[t * stride + i]) << "v changed at token " << t << ", element " << i;
      }
    }
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> k_cache(size_t(num_slots) * slot_elems, nan), v_cache(k_cache.size(), nan);
    cpu::write_kv_cache(actual.data() + k_offset, stride, actual.data() + v_offset, stride, cpu_slot_mapping.data(),
                        s.tokens, s.kv_heads, s.head_dim, k_cache.data(), v_cache.data());
    EXPECT_EQ(first_difference(k_cache_bytes, expected_cache_bytes(k_cache, dtype()), elem), -1)
        << "k_cache differs from the CPU write of the rotated k";
    EXPECT_EQ(first_difference(v_cache_bytes, expected_cache_bytes(v_cache, dtype()), elem), -1)
        << "v_cache differs from the CPU write of v";
  }
};

TEST_P(RopeAndWriteKvCuda, MatchesRopeThenKvCacheWrite) {
  STRATA_SEEDED_RNG(rng);
  // Llama-3-8B decode (one token, GQA 32/8 of 128) and a prefill chunk; head_dim 64 and 256 on
  // the 16-byte path, 36 (3/1 heads) and 6 element-wise; GQA 1 with head_dim 16; 70000 tokens
  // run the grid-stride loop past the first token's pre-wait table.
  for (const RopeKvShape s :
       {RopeKvShape{1, 32, 8, 128, 4, 16}, RopeKvShape{37, 32, 8, 128, 7, 16}, RopeKvShape{9, 4, 2, 64, 2, 8},
        RopeKvShape{5, 3, 1, 36, 3, 4}, RopeKvShape{4, 4, 2, 256, 1, 16}, RopeKvShape{3, 2, 2, 6, 1, 4},
        RopeKvShape{11, 4, 4, 16, 2, 8}, RopeKvShape{70000, 1, 1, 16, 4400, 16}}) {
    check(rng, s);
    if (HasFatalFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(DTypes, RopeAndWriteKvCuda, test::kAllDTypes, test::DTypeName());

}  // namespace
}  // namespace strata
