// Tests kernels/cuda/rope.cu against its CPU twin kernels/cpu/rope.cpp, with default and
// Llama 3.1-scaled inverse frequencies built on the host; in bf16/fp16 also against HF
// transformers' rounding points.
#include "kernels/cuda/rope.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/rope.h"
#include "tests/kernels/cuda/cuda_test_util.h"

namespace strata {
namespace {

using test::CudaKernelTest;
using test::DeviceBuffer;
using test::DType;

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

// The rotated part of a buffer: each of `tokens` rows (`stride` elements apart) starts with
// `heads` heads of head_dim (q then k in a fused [q | k | v] row).
struct RotatedRows {
  int tokens;
  int64_t stride;
  int heads;
  int head_dim;

  int64_t at(int t, int h, int i) const { return t * stride + int64_t(h) * head_dim + i; }
};

// HF transformers' 16-bit rotation, q * cos + rotate_half(q) * sin one torch op at a time,
// from rounded tables cos, sin: [tokens, head_dim / 2]: with r = round to the dtype,
//   x1' = r(r(x1 cos) - r(x2 sin)),  x2' = r(r(x2 cos) + r(x1 sin)).
std::vector<float> transformers_rotation(const std::vector<float>& x, const RotatedRows& rows,
                                         const std::vector<float>& cos, const std::vector<float>& sin, DType dtype) {
  const int half = rows.head_dim / 2;
  const size_t pairs = size_t(rows.tokens) * rows.heads * half;
  std::vector<float> x1_cos(pairs), x2_sin(pairs), x2_cos(pairs), x1_sin(pairs);
  size_t p = 0;
  for (int t = 0; t < rows.tokens; ++t) {
    for (int h = 0; h < rows.heads; ++h) {
      for (int i = 0; i < half; ++i, ++p) {
        const float a = x[rows.at(t, h, i)], b = x[rows.at(t, h, i + half)];
        const float c = cos[size_t(t) * half + i], s = sin[size_t(t) * half + i];
        x1_cos[p] = a * c;  // products of two dtype values: exact in fp32
        x2_sin[p] = b * s;
        x2_cos[p] = b * c;
        x1_sin[p] = a * s;
      }
    }
  }
  x1_cos = test::round_to(x1_cos, dtype);
  x2_sin = test::round_to(x2_sin, dtype);
  x2_cos = test::round_to(x2_cos, dtype);
  x1_sin = test::round_to(x1_sin, dtype);
  std::vector<float> out1(pairs), out2(pairs);
  for (size_t q = 0; q < pairs; ++q) {
    out1[q] = x1_cos[q] - x2_sin[q];
    out2[q] = x2_cos[q] + x1_sin[q];
  }
  out1 = test::round_to(out1, dtype);
  out2 = test::round_to(out2, dtype);
  std::vector<float> out = x;
  p = 0;
  for (int t = 0; t < rows.tokens; ++t) {
    for (int h = 0; h < rows.heads; ++h) {
      for (int i = 0; i < half; ++i, ++p) {
        out[rows.at(t, h, i)] = out1[p];
        out[rows.at(t, h, i + half)] = out2[p];
      }
    }
  }
  return out;
}

// Five roundings of at most u each (cos, sin, both products, the sum) put a 16-bit rotation
// within u (2 (|x1| + |x2|) + |exact|) of the fp32 one (|cos|, |sin| <= 1; the factors carry
// the u^2 terms and fp32 noise). Where the two products cancel this is far looser than the one
// rounding (u |exact|) of a kernel that rotates in fp32, hence no fixed rtol.
::testing::AssertionResult within_rounding_bound(const std::vector<float>& x, const std::vector<float>& exact,
                                                 const std::vector<float>& actual, const RotatedRows& rows, float u) {
  const int half = rows.head_dim / 2;
  for (int t = 0; t < rows.tokens; ++t) {
    for (int h = 0; h < rows.heads; ++h) {
      for (int i = 0; i < rows.head_dim; ++i) {
        const int64_t e = rows.at(t, h, i);
        const int pair = i < half ? i + half : i - half;
        const float bound =
            u * (2.05f * (std::fabs(x[e]) + std::fabs(x[rows.at(t, h, pair)])) + 1.05f * std::fabs(exact[e])) + 1e-6f;
        if (!(std::fabs(actual[e] - exact[e]) <= bound)) {
          return ::testing::AssertionFailure() << "token " << t << " head " << h << " element " << i << ": "
                                               << actual[e] << " vs fp32 " << exact[e] << " (bound " << bound << ")";
        }
      }
    }
  }
  return ::testing::AssertionSuccess();
}

class RopeNeoxCuda : public CudaKernelTest {
 protected:
  // The kernel's own rounded tables, [tokens, head_dim / 2] each: rotating x1 = 1, x2 = 0
  // returns r(r(1 cos) - r(0 sin)) = cos and r(r(0 cos) + r(1 sin)) = sin, exactly.
  void device_tables(const DeviceBuffer& d_positions, int tokens, int head_dim, const DeviceBuffer& d_inv_freq,
                     std::vector<float>* cos, std::vector<float>* sin) {
    const int half = head_dim / 2;
    std::vector<float> probe(size_t(tokens) * head_dim, 0.0f);
    for (int t = 0; t < tokens; ++t) std::fill_n(probe.begin() + int64_t(t) * head_dim, half, 1.0f);
    DeviceBuffer d_probe = test::to_device(probe, dtype());
    ASSERT_TRUE(d_probe.ok());
    STRATA_ASSERT_LAUNCH(cuda::rope_neox(d_probe.get(), head_dim, 1, nullptr, 0, 0, d_positions.as<int32_t>(), tokens,
                                         head_dim, d_inv_freq.as<float>(), dtype(), stream_));
    STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
    const auto rotated = fetch(d_probe);
    cos->resize(size_t(tokens) * half);
    sin->resize(size_t(tokens) * half);
    for (int t = 0; t < tokens; ++t) {
      std::copy_n(rotated.begin() + int64_t(t) * head_dim, half, cos->begin() + int64_t(t) * half);
      std::copy_n(rotated.begin() + int64_t(t) * head_dim + half, half, sin->begin() + int64_t(t) * half);
    }
  }

  // fp32 rotates once: the CPU twin's result within fp32 reordering. bf16/fp16 round as HF
  // transformers does (rope.h): the kernel's cos/sin tables must be cos/sin of the fp32 angle
  // rounded (within u, as host and device cosf may differ in the last fp32 bit), the rotation
  // from those tables must equal transformers_rotation bit for bit, and the result must stay
  // within the rounding bound of the fp32 twin.
  void expect_rotation(const std::vector<float>& input, const std::vector<float>& twin,
                       const std::vector<float>& actual, const RotatedRows& rows, const std::vector<int32_t>& positions,
                       const std::vector<float>& inv_freq, const DeviceBuffer& d_positions,
                       const DeviceBuffer& d_inv_freq) {
    if (dtype() == DType::kF32) {
      EXPECT_TRUE(test::all_close(actual, twin, tol().atol, tol().rtol));
      return;
    }
    const float u = test::unit_roundoff(dtype());
    std::vector<float> cos, sin;
    device_tables(d_positions, rows.tokens, rows.head_dim, d_inv_freq, &cos, &sin);
    if (HasFatalFailure()) return;
    const int half = rows.head_dim / 2;
    for (int t = 0; t < rows.tokens; ++t) {
      for (int i = 0; i < half; ++i) {
        const double angle = static_cast<float>(positions[t]) * inv_freq[i];  // one fp32 product
        const double want[2] = {std::cos(angle), std::sin(angle)};
        const float got[2] = {cos[size_t(t) * half + i], sin[size_t(t) * half + i]};
        for (int k = 0; k < 2; ++k) {
          ASSERT_LE(std::fabs(got[k] - want[k]), u * std::fabs(want[k]) + 1e-6)
              << (k == 0 ? "cos" : "sin") << " of token " << t << " (position " << positions[t] << "), frequency " << i;
        }
      }
    }
    EXPECT_TRUE(test::all_close(actual, transformers_rotation(input, rows, cos, sin, dtype()), 0.0f))
        << "rounding points differ from transformers'";
    EXPECT_TRUE(within_rounding_bound(input, twin, actual, rows, u));
  }

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
    expect_rotation(qkv, expected, actual, {s.tokens, stride, s.q_heads + s.kv_heads, s.head_dim}, positions, inv_freq,
                    d_positions, d_inv_freq);
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
  expect_rotation(q, expected, fetch(d_q), {tokens, heads * head_dim, heads, head_dim}, positions, inv_freq,
                  d_positions, d_inv_freq);
}

INSTANTIATE_TEST_SUITE_P(DTypes, RopeNeoxCuda, test::kAllDTypes, test::DTypeName());

}  // namespace
}  // namespace strata
