// Tests kernels/cuda/kv_cache.cu against its CPU twin kernels/cpu/kv_cache.cpp: the addressed
// slots get the new K/V rows bit for bit and every other slot keeps its poison.
#include "kernels/cuda/kv_cache.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "kernels/cpu/kv_cache.h"
#include "tests/kernels/cuda/cuda_test_util.h"

namespace strata {
namespace {

using test::CudaKernelTest;
using test::DeviceBuffer;

struct KvShape {
  int tokens, q_heads, kv_heads, head_dim, num_blocks, block_size;
};

// The bytes the GPU cache must hold: the CPU twin's cache (NaN = never written) in the dtype,
// with unwritten elements as the 0xFF poison.
std::vector<uint8_t> expected_cache_bytes(const std::vector<float>& cpu_cache, test::DType dtype) {
  std::vector<uint8_t> bytes = test::encode(cpu_cache, dtype);
  const size_t elem = cuda::dtype_size(dtype);
  for (size_t i = 0; i < cpu_cache.size(); ++i) {
    if (std::isnan(cpu_cache[i])) std::fill_n(bytes.begin() + i * elem, elem, uint8_t{0xFF});
  }
  return bytes;
}

// First differing element of two caches, as "slot s, element e", or "".
std::string first_difference(const std::vector<uint8_t>& actual, const std::vector<uint8_t>& expected, size_t elem,
                             int64_t slot_elems) {
  for (size_t i = 0; i < actual.size(); i += elem) {
    if (!std::equal(actual.begin() + i, actual.begin() + i + elem, expected.begin() + i)) {
      const int64_t e = static_cast<int64_t>(i / elem);
      return "slot " + std::to_string(e / slot_elems) + ", element " + std::to_string(e % slot_elems);
    }
  }
  return "";
}

class WriteKvCacheCuda : public CudaKernelTest {
 protected:
  // K and V are the k and v parts of a fused [q | k | v] row when q_heads > 0, else two
  // contiguous tensors.
  void check(std::mt19937_64& rng, const KvShape& s) {
    SCOPED_TRACE(std::to_string(s.tokens) + " tokens, " + std::to_string(s.kv_heads) + " kv heads of " +
                 std::to_string(s.head_dim) + ", " + std::to_string(s.num_blocks) + " blocks of " +
                 std::to_string(s.block_size));
    const int64_t num_slots = int64_t(s.num_blocks) * s.block_size;
    const int64_t slot_elems = int64_t(s.kv_heads) * s.head_dim;
    ASSERT_LE(s.tokens, num_slots);
    const bool fused = s.q_heads > 0;
    const int64_t stride = fused ? int64_t(s.q_heads + 2 * s.kv_heads) * s.head_dim : slot_elems;
    const auto qkv = test::round_to(test::random_vector(rng, size_t(s.tokens) * stride, -4, 4), dtype());
    const auto second = test::round_to(test::random_vector(rng, size_t(s.tokens) * stride, -4, 4), dtype());
    const int64_t key_offset = fused ? int64_t(s.q_heads) * s.head_dim : 0;
    const int64_t value_offset = fused ? key_offset + slot_elems : 0;
    const std::vector<float>& value_source = fused ? qkv : second;

    // Distinct slots in random blocks; every fifth token skipped (-1); one token past the
    // cache, which only the GPU kernel is given (the CPU twin leaves that to callers).
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

    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> k_cache(size_t(num_slots) * slot_elems, nan);
    std::vector<float> v_cache(k_cache.size(), nan);
    cpu::write_kv_cache(qkv.data() + key_offset, stride, value_source.data() + value_offset, stride,
                        cpu_slot_mapping.data(), s.tokens, s.kv_heads, s.head_dim, k_cache.data(), v_cache.data());

    const size_t elem = cuda::dtype_size(dtype());
    DeviceBuffer d_qkv = test::to_device(qkv, dtype());
    DeviceBuffer d_second = test::to_device(second, dtype());
    DeviceBuffer d_slots(slot_mapping.size() * sizeof(int64_t));
    DeviceBuffer d_k_cache(k_cache.size() * elem);
    DeviceBuffer d_v_cache(v_cache.size() * elem);
    ASSERT_TRUE(d_qkv.ok() && d_second.ok() && d_slots.ok() && d_k_cache.ok() && d_v_cache.ok());
    STRATA_ASSERT_CUDA(d_slots.upload(slot_mapping));
    STRATA_ASSERT_CUDA(d_k_cache.poison());
    STRATA_ASSERT_CUDA(d_v_cache.poison());
    const uint8_t* key = d_qkv.as<uint8_t>() + key_offset * elem;
    const uint8_t* value = (fused ? d_qkv : d_second).as<uint8_t>() + value_offset * elem;
    STRATA_ASSERT_LAUNCH(cuda::write_kv_cache(key, stride, value, stride, d_slots.as<int64_t>(), s.tokens, s.kv_heads,
                                              s.head_dim, d_k_cache.get(), d_v_cache.get(), num_slots, dtype(),
                                              stream_));
    STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
    EXPECT_EQ(first_difference(d_k_cache.download(), expected_cache_bytes(k_cache, dtype()), elem, slot_elems), "")
        << "k_cache differs";
    EXPECT_EQ(first_difference(d_v_cache.download(), expected_cache_bytes(v_cache, dtype()), elem, slot_elems), "")
        << "v_cache differs";
  }
};

TEST_P(WriteKvCacheCuda, WritesAddressedSlotsOnly) {
  STRATA_SEEDED_RNG(rng);
  // Fused QKV rows (GQA 32/8, 128) and contiguous K/V; head_dim 36 with 3 heads and an odd
  // q offset take the element-wise path; a single decode token; 20000 tokens for the grid loop.
  for (const KvShape s : {KvShape{37, 32, 8, 128, 7, 16}, KvShape{20, 0, 2, 64, 3, 16}, KvShape{13, 3, 1, 36, 5, 4},
                          KvShape{1, 4, 2, 128, 2, 16}, KvShape{20000, 0, 1, 8, 1300, 16}}) {
    check(rng, s);
    if (HasFatalFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(DTypes, WriteKvCacheCuda, test::kAllDTypes, test::DTypeName());

}  // namespace
}  // namespace strata
