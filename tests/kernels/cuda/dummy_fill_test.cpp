// Tests kernels/cuda/dummy_fill.cu against its CPU twin kernels/cpu/dummy_fill.cpp: the GPU's
// dummy values are the host's rounded once to the dtype, bit for bit, so a dummy model made on
// the GPU is the one the CPU reference makes.
#include "kernels/cuda/dummy_fill.h"

#include <cmath>

#include "kernels/cpu/dummy_fill.h"
#include "tests/kernels/cuda/cuda_test_util.h"

namespace strata {
namespace {

using test::CudaKernelTest;
using test::DeviceBuffer;

class DummyFillCuda : public CudaKernelTest {};

TEST_P(DummyFillCuda, NormalMatchesCpuTwinBitForBit) {
  STRATA_SEEDED_RNG(rng);
  // Sizes around the grid's 8192 x 256 stride and an odd one; keys near the 64-bit wrap.
  for (size_t numel : {size_t{1}, size_t{1000}, size_t{8192 * 256 + 3}, size_t{5'000'001}}) {
    for (uint64_t key : {uint64_t{rng()}, ~uint64_t{0} - 10}) {
      SCOPED_TRACE("numel " + std::to_string(numel) + ", key " + std::to_string(key));
      std::vector<float> expected(numel);
      cpu::dummy_normal(key, 0.02f, 0, numel, expected.data());
      expected = test::round_to(expected, dtype());
      DeviceBuffer out(numel * cuda::dtype_size(dtype()));
      ASSERT_TRUE(out.ok());
      STRATA_ASSERT_CUDA(out.poison());
      STRATA_ASSERT_LAUNCH(cuda::dummy_normal(key, 0.02f, numel, out.get(), dtype(), stream_));
      STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
      const std::vector<float> got = fetch(out);
      size_t mismatches = 0, first = numel;
      for (size_t i = 0; i < numel; ++i) {
        if (got[i] != expected[i]) {
          if (mismatches++ == 0) first = i;
        }
      }
      EXPECT_EQ(mismatches, 0u) << "first at " << first << ": got " << got[first] << ", want " << expected[first];
    }
  }
}

TEST_P(DummyFillCuda, NormalHasTheRequestedSpread) {
  constexpr size_t kNumel = 1 << 20;
  DeviceBuffer out(kNumel * cuda::dtype_size(dtype()));
  ASSERT_TRUE(out.ok());
  STRATA_ASSERT_LAUNCH(cuda::dummy_normal(12345, 0.02f, kNumel, out.get(), dtype(), stream_));
  STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
  double sum = 0, sum_sq = 0;
  for (float v : fetch(out)) {
    sum += v;
    sum_sq += static_cast<double>(v) * v;
  }
  const double mean = sum / kNumel;
  EXPECT_NEAR(mean, 0.0, 1e-4);
  EXPECT_NEAR(std::sqrt(sum_sq / kNumel - mean * mean), 0.02, 2e-4);
}

TEST_P(DummyFillCuda, ConstantFillsEveryElement) {
  for (size_t numel : {size_t{1}, size_t{4097}, size_t{3'000'017}}) {
    SCOPED_TRACE("numel " + std::to_string(numel));
    DeviceBuffer out(numel * cuda::dtype_size(dtype()));
    ASSERT_TRUE(out.ok());
    STRATA_ASSERT_CUDA(out.poison());
    STRATA_ASSERT_LAUNCH(cuda::fill_constant(1.0f, numel, out.get(), dtype(), stream_));
    STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
    EXPECT_TRUE(test::all_close(fetch(out), std::vector<float>(numel, 1.0f), 0.0f));
  }
}

INSTANTIATE_TEST_SUITE_P(DTypes, DummyFillCuda, test::kAllDTypes, test::DTypeName());

}  // namespace
}  // namespace strata
