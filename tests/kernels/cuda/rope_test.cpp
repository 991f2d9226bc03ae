// Tests kernels/cuda/rope.cu against its CPU twin kernels/cpu/rope.cpp, with default and
// Llama 3.1-scaled inverse frequencies built on the host.
#include "kernels/cuda/rope.h"

#include "kernels/cpu/rope.h"
#include "tests/kernels/cuda/cuda_test_util.h"

namespace strata {
namespace {

using test::CudaKernelTest;
using test::DeviceBuffer;

struct RopeShape {
  int tokens, q_heads, kv_heads, head_dim;
};

std::string describe(const RopeShape& s) {
  return std::to_string(s.tokens) + " tokens, " + std::to_string(s.q_heads) + "/" + std::to_string(s.kv_heads) +
         " heads of " + std::to_string(s.head_dim);
}

std::vector<float> inv_freq_table(int head_dim, float theta, bool llama3) {
  std::vector<float> inv_freq(head_dim / 2);
  cpu::rope_inv_freq(head_dim, theta, inv_freq.data());
  if (llama3) cpu::rope_llama3_scale(inv_freq.data(), head_dim / 2, 8.0f, 1.0f, 4.0f, 8192);
  return inv_freq;
}

// Positions across a long context, always including 0 and one past 100K.
std::vector<int32_t> random_positions(std::mt19937_64& rng, int tokens) {
  std::vector<int32_t> positions(tokens);
  for (auto& p : positions) p = test::random_int(rng, 0, 131071);
  positions[0] = 0;
  if (tokens > 1) positions[1] = 100003;
  return positions;
}

class RopeNeoxCuda : public CudaKernelTest {
 protected:
  // Rotates the q and k parts of a fused [q | k | v] buffer on both backends and compares
  // the whole buffer: v must come back unchanged.
  void check_fused_qkv(std::mt19937_64& rng, const RopeShape& s, float theta, bool llama3) {
    SCOPED_TRACE(describe(s) + (llama3 ? ", llama3 scaling" : ", theta " + std::to_string(theta)));
    const int64_t stride = int64_t(s.q_heads + 2 * s.kv_heads) * s.head_dim;
    const auto qkv = test::round_to(test::random_vector(rng, size_t(s.tokens) * stride, -2, 2), dtype());
    const auto positions = random_positions(rng, s.tokens);
    const auto inv_freq = inv_freq_table(s.head_dim, theta, llama3);
    std::vector<float> expected = qkv;
    const int64_t k_offset = int64_t(s.q_heads) * s.head_dim;
    cpu::rope_neox(expected.data(), stride, s.q_heads, expected.data() + k_offset, stride, s.kv_heads, positions.data(),
                   s.tokens, s.head_dim, inv_freq.data());

    DeviceBuffer d_qkv = test::to_device(qkv, dtype());
    DeviceBuffer d_positions(positions.size() * sizeof(int32_t));
    DeviceBuffer d_inv_freq(inv_freq.size() * sizeof(float));
    ASSERT_TRUE(d_qkv.ok() && d_positions.ok() && d_inv_freq.ok());
    STRATA_ASSERT_CUDA(d_positions.upload(positions));
    STRATA_ASSERT_CUDA(d_inv_freq.upload(inv_freq));
    uint8_t* k = d_qkv.as<uint8_t>() + k_offset * cuda::dtype_size(dtype());
    STRATA_ASSERT_LAUNCH(cuda::rope_neox(d_qkv.get(), stride, s.q_heads, k, stride, s.kv_heads,
                                         d_positions.as<int32_t>(), s.tokens, s.head_dim, d_inv_freq.as<float>(),
                                         dtype(), stream_));
    STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
    const auto actual = fetch(d_qkv);
    EXPECT_TRUE(test::all_close(actual, expected, tol().atol, tol().rtol));
    for (int t = 0; t < s.tokens; ++t) {
      for (int64_t i = k_offset + int64_t(s.kv_heads) * s.head_dim; i < stride; ++i) {
        ASSERT_EQ(actual[t * stride + i], qkv[t * stride + i]) << "v changed at token " << t << ", element " << i;
      }
    }
  }
};

// head_dim 36 and 6 take the element-wise path (half not a multiple of the vector width);
// 64, 128 and 256 the 16-byte path; 70000 tokens run the grid-stride loop.
const std::vector<RopeShape> kShapes = {{1, 1, 1, 64},  {7, 32, 8, 128}, {5, 3, 1, 36},
                                        {4, 4, 2, 256}, {3, 2, 2, 6},    {70000, 1, 1, 16}};

TEST_P(RopeNeoxCuda, DefaultInvFreqMatchesCpuTwin) {
  STRATA_SEEDED_RNG(rng);
  for (const auto& s : kShapes) {
    check_fused_qkv(rng, s, 10000.0f, false);
    if (HasFatalFailure()) return;
  }
  check_fused_qkv(rng, {6, 8, 2, 128}, 1000000.0f, false);
}

TEST_P(RopeNeoxCuda, Llama3ScaledInvFreqMatchesCpuTwin) {
  STRATA_SEEDED_RNG(rng);
  for (const auto& s : kShapes) {
    check_fused_qkv(rng, s, 500000.0f, true);
    if (HasFatalFailure()) return;
  }
}

TEST_P(RopeNeoxCuda, QOnlyWhenKIsNull) {
  STRATA_SEEDED_RNG(rng);
  const int tokens = 5, heads = 4, head_dim = 128;
  const auto q = test::round_to(test::random_vector(rng, size_t(tokens) * heads * head_dim, -2, 2), dtype());
  const auto positions = random_positions(rng, tokens);
  const auto inv_freq = inv_freq_table(head_dim, 10000.0f, false);
  std::vector<float> expected = q;
  cpu::rope_neox(expected.data(), heads * head_dim, heads, nullptr, 0, 0, positions.data(), tokens, head_dim,
                 inv_freq.data());

  DeviceBuffer d_q = test::to_device(q, dtype());
  DeviceBuffer d_positions(positions.size() * sizeof(int32_t));
  DeviceBuffer d_inv_freq(inv_freq.size() * sizeof(float));
  ASSERT_TRUE(d_q.ok() && d_positions.ok() && d_inv_freq.ok());
  STRATA_ASSERT_CUDA(d_positions.upload(positions));
  STRATA_ASSERT_CUDA(d_inv_freq.upload(inv_freq));
  STRATA_ASSERT_LAUNCH(cuda::rope_neox(d_q.get(), heads * head_dim, heads, nullptr, 0, 0, d_positions.as<int32_t>(),
                                       tokens, head_dim, d_inv_freq.as<float>(), dtype(), stream_));
  STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
  EXPECT_TRUE(test::all_close(fetch(d_q), expected, tol().atol, tol().rtol));
}

INSTANTIATE_TEST_SUITE_P(DTypes, RopeNeoxCuda, test::kAllDTypes, test::DTypeName());

}  // namespace
}  // namespace strata
