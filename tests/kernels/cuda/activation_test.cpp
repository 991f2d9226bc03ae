// Tests kernels/cuda/activation.cu (SwiGLU) against its CPU twin kernels/cpu/activation.cpp.
#include "kernels/cuda/activation.h"

#include "kernels/cpu/activation.h"
#include "tests/kernels/cuda/cuda_test_util.h"

namespace strata {
namespace {

using test::CudaKernelTest;
using test::DeviceBuffer;

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

INSTANTIATE_TEST_SUITE_P(DTypes, SiluAndMulCuda, test::kAllDTypes, test::DTypeName());
INSTANTIATE_TEST_SUITE_P(DTypes, SiluMulCuda, test::kAllDTypes, test::DTypeName());

}  // namespace
}  // namespace strata
