// Tests kernels/cuda/round.cu against the host's rounding (test::round_to, which uses the
// same round-to-nearest-even conversions as engine/core/dtype.h): bit for bit, every length
// around the vector width, values across the exponent range, infinities kept.
#include "kernels/cuda/round.h"

#include <limits>

#include "tests/kernels/cuda/cuda_test_util.h"

namespace strata {
namespace {

using test::CudaKernelTest;
using test::DeviceBuffer;

class RoundToDtypeCuda : public CudaKernelTest {};

TEST_P(RoundToDtypeCuda, MatchesHostRoundingBitForBit) {
  STRATA_SEEDED_RNG(rng);
  for (int64_t n : {int64_t{1}, int64_t{3}, int64_t{4}, int64_t{5}, int64_t{128256}, int64_t{3 * 128256 + 7}}) {
    SCOPED_TRACE("n " + std::to_string(n));
    std::vector<float> values = test::random_vector(rng, static_cast<size_t>(n), -30, 30);
    if (n > 4) {
      values[1] = std::numeric_limits<float>::infinity();
      values[2] = -std::numeric_limits<float>::infinity();
      values[3] = 1.0f + 1.0f / 512;  // halfway between two bf16 values: to even
    }
    const std::vector<float> expected =
        dtype() == cuda::DType::kF32 ? values : test::round_to(values, dtype());
    DeviceBuffer d(values.size() * sizeof(float));
    ASSERT_TRUE(d.ok());
    STRATA_ASSERT_CUDA(d.upload(values));
    STRATA_ASSERT_LAUNCH(cuda::round_to_dtype(d.as<float>(), n, dtype(), stream_));
    STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
    const std::vector<float> got = test::decode(d.download(), cuda::DType::kF32);
    ASSERT_EQ(got.size(), expected.size());
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], expected[i]) << "element " << i << " of " << values[i];
  }
}

INSTANTIATE_TEST_SUITE_P(DTypes, RoundToDtypeCuda, test::kAllDTypes, test::DTypeName());

}  // namespace
}  // namespace strata
