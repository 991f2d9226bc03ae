// Tests kernels/cuda/activation.cu (SwiGLU) against its CPU twin kernels/cpu/activation.cpp,
// and in bf16/fp16 against HF transformers' rounding points.
#include "kernels/cuda/activation.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/activation.h"
#include "tests/kernels/cuda/cuda_test_util.h"

namespace strata {
namespace {

using test::CudaKernelTest;
using test::DeviceBuffer;
using test::DType;

class SiluAndMulCuda : public CudaKernelTest {};

TEST_P(SiluAndMulCuda, FusedGateUpMatchesCpuTwin) {
  STRATA_SEEDED_RNG(rng);
  for (auto [tokens, dim] : {std::pair{1, 8}, {5, 96}, {3, 1001}, {64, 1024}, {3, 4864}, {70000, 4}}) {
    SCOPED_TRACE(std::to_string(tokens) + "x" + std::to_string(dim));
    const auto gate_up = test::round_to(test::random_vector(rng, size_t(tokens) * 2 * dim, -8, 8), dtype());
    std::vector<float> expected(size_t(tokens) * dim);
    cpu::silu_and_mul(gate_up.data(), expected.data(), tokens, dim);

    DeviceBuffer d_gate_up = test::to_device(gate_up, dtype());
    DeviceBuffer d_out(expected.size() * cuda::dtype_size(dtype()));
    ASSERT_TRUE(d_gate_up.ok() && d_out.ok());
    STRATA_ASSERT_CUDA(d_out.poison());
    STRATA_ASSERT_LAUNCH(cuda::silu_and_mul(d_gate_up.get(), d_out.get(), tokens, dim, dtype(), stream_));
    STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
    EXPECT_TRUE(test::all_close(fetch(d_out), expected, tol().atol, tol().rtol));
  }
}

class SiluMulCuda : public CudaKernelTest {};

TEST_P(SiluMulCuda, SeparateInputsMatchCpuTwin) {
  STRATA_SEEDED_RNG(rng);
  for (int64_t n : {1, 7, 4096, 100003}) {
    SCOPED_TRACE("n " + std::to_string(n));
    const auto gate = test::round_to(test::random_vector(rng, n, -20, 20), dtype());
    const auto up = test::round_to(test::random_vector(rng, n, -2, 2), dtype());
    std::vector<float> expected(n);
    cpu::silu_mul(gate.data(), up.data(), expected.data(), n);

    DeviceBuffer d_gate = test::to_device(gate, dtype());
    DeviceBuffer d_up = test::to_device(up, dtype());
    DeviceBuffer d_out(d_gate.bytes());
    ASSERT_TRUE(d_gate.ok() && d_up.ok() && d_out.ok());
    STRATA_ASSERT_CUDA(d_out.poison());
    STRATA_ASSERT_LAUNCH(cuda::silu_mul(d_gate.get(), d_up.get(), d_out.get(), n, dtype(), stream_));
    STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
    EXPECT_TRUE(test::all_close(fetch(d_out), expected, tol().atol, tol().rtol));
  }
}

// Pointers one element past an aligned address take the element-wise path; out aliases gate.
TEST_P(SiluMulCuda, MisalignedInPlaceMatchesCpuTwin) {
  STRATA_SEEDED_RNG(rng);
  const int64_t n = 1000;
  const auto gate = test::round_to(test::random_vector(rng, n + 1, -20, 20), dtype());
  const auto up = test::round_to(test::random_vector(rng, n + 1, -2, 2), dtype());
  std::vector<float> expected = gate;
  cpu::silu_mul(gate.data() + 1, up.data() + 1, expected.data() + 1, n);

  DeviceBuffer d_gate = test::to_device(gate, dtype());
  DeviceBuffer d_up = test::to_device(up, dtype());
  ASSERT_TRUE(d_gate.ok() && d_up.ok());
  const size_t one = cuda::dtype_size(dtype());
  uint8_t* gate_1 = d_gate.as<uint8_t>() + one;
  STRATA_ASSERT_LAUNCH(cuda::silu_mul(gate_1, d_up.as<uint8_t>() + one, gate_1, n, dtype(), stream_));
  STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
  EXPECT_TRUE(test::all_close(fetch(d_gate), expected, tol().atol, tol().rtol));
}

// bf16/fp16 round silu(gate) to the dtype before the product, as HF transformers
// (act_fn(gate_proj(x)) * up_proj(x), two torch ops) and vLLM do; fp32 rounds once. The
// kernel's rounded silu, read back through up = 1 (r(r(silu) * 1) = r(silu) exactly), must be
// silu within u (host and device expf may differ in the last fp32 bit), and out must equal
// r(r(silu) * up) from it bit for bit, on both the fused [gate | up] and the separate path.
// (Against the fp32 twin the two roundings stay within 2u |out|, inside tol().)
class SiluRoundingCuda : public CudaKernelTest {
 protected:
  // silu_and_mul on rows [gate | up] built from gate and up: [tokens * dim] each.
  std::vector<float> fused(const std::vector<float>& gate, const std::vector<float>& up, int tokens, int dim) {
    std::vector<float> gate_up(size_t(tokens) * 2 * dim);
    for (int t = 0; t < tokens; ++t) {
      std::copy_n(gate.begin() + int64_t(t) * dim, dim, gate_up.begin() + int64_t(t) * 2 * dim);
      std::copy_n(up.begin() + int64_t(t) * dim, dim, gate_up.begin() + int64_t(t) * 2 * dim + dim);
    }
    DeviceBuffer d_gate_up = test::to_device(gate_up, dtype());
    DeviceBuffer d_out(gate.size() * cuda::dtype_size(dtype()));
    EXPECT_TRUE(d_gate_up.ok() && d_out.ok());
    EXPECT_TRUE(cuda::silu_and_mul(d_gate_up.get(), d_out.get(), tokens, dim, dtype(), stream_).ok());
    EXPECT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
    return fetch(d_out);
  }

  // silu_mul on separate gate and up.
  std::vector<float> separate(const std::vector<float>& gate, const std::vector<float>& up) {
    DeviceBuffer d_gate = test::to_device(gate, dtype());
    DeviceBuffer d_up = test::to_device(up, dtype());
    DeviceBuffer d_out(d_gate.bytes());
    EXPECT_TRUE(d_gate.ok() && d_up.ok() && d_out.ok());
    EXPECT_TRUE(cuda::silu_mul(d_gate.get(), d_up.get(), d_out.get(), int64_t(gate.size()), dtype(), stream_).ok());
    EXPECT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
    return fetch(d_out);
  }

  void expect_transformers_rounding(const std::vector<float>& gate, const std::vector<float>& up,
                                    const std::vector<float>& rounded_silu, const std::vector<float>& out) {
    const float u = test::unit_roundoff(dtype());
    for (size_t i = 0; i < gate.size(); ++i) {
      const double g = gate[i];
      const double silu = g / (1.0 + std::exp(-g));
      ASSERT_LE(std::fabs(rounded_silu[i] - silu), u * std::fabs(silu) + 1e-6) << "silu(" << g << ") at " << i;
    }
    std::vector<float> product(gate.size());
    for (size_t i = 0; i < gate.size(); ++i) product[i] = rounded_silu[i] * up[i];
    EXPECT_TRUE(test::all_close(out, test::round_to(product, dtype()), 0.0f)) << "rounding points differ";
  }
};

TEST_P(SiluRoundingCuda, RoundsSiluBeforeTheProductLikeTransformers) {
  if (dtype() == DType::kF32) GTEST_SKIP() << "fp32 rounds once";
  STRATA_SEEDED_RNG(rng);
  const int tokens = 37, dim = 1024;
  const auto gate = test::round_to(test::random_vector(rng, size_t(tokens) * dim, -20, 20), dtype());
  const auto up = test::round_to(test::random_vector(rng, gate.size(), -4, 4), dtype());
  const std::vector<float> ones(gate.size(), 1.0f);
  {
    SCOPED_TRACE("silu_and_mul");
    const auto rounded_silu = fused(gate, ones, tokens, dim);
    expect_transformers_rounding(gate, up, rounded_silu, fused(gate, up, tokens, dim));
  }
  {
    SCOPED_TRACE("silu_mul");
    const auto rounded_silu = separate(gate, ones);
    expect_transformers_rounding(gate, up, rounded_silu, separate(gate, up));
  }
}

INSTANTIATE_TEST_SUITE_P(DTypes, SiluAndMulCuda, test::kAllDTypes, test::DTypeName());
INSTANTIATE_TEST_SUITE_P(DTypes, SiluMulCuda, test::kAllDTypes, test::DTypeName());
INSTANTIATE_TEST_SUITE_P(DTypes, SiluRoundingCuda, test::kAllDTypes, test::DTypeName());

}  // namespace
}  // namespace strata
