// Tests kernels/cuda/bias_add.cu against the bias epilogue of the CPU twin
// kernels/cpu/linear.cpp: linear(x, W, nullptr) + bias on the GPU == linear(x, W, bias).
#include "kernels/cuda/bias_add.h"

#include "kernels/cpu/linear.h"
#include "tests/kernels/cuda/cuda_test_util.h"

namespace strata {
namespace {

using test::CudaKernelTest;
using test::DeviceBuffer;

class BiasAddCuda : public CudaKernelTest {};

TEST_P(BiasAddCuda, AddsBiasLikeCpuLinear) {
  STRATA_SEEDED_RNG(rng);
  const int in_features = 16;
  // 4096 + 2 * 512: a Qwen2 QKV row; 1001 and 3 take the element-wise path.
  for (auto [rows, out_features] : {std::pair{1, 8}, {7, 5120}, {5, 1001}, {3, 3}, {70000, 8}}) {
    SCOPED_TRACE(std::to_string(rows) + "x" + std::to_string(out_features));
    const auto x = test::random_vector(rng, size_t(rows) * in_features, -1, 1);
    const auto weight = test::random_vector(rng, size_t(out_features) * in_features, -0.5f, 0.5f);
    const auto bias = test::round_to(test::random_vector(rng, out_features, -2, 2), dtype());
    std::vector<float> y(size_t(rows) * out_features);
    cpu::linear(x.data(), weight.data(), nullptr, y.data(), rows, in_features, out_features);
    y = test::round_to(y, dtype());  // the GEMM output as the GPU holds it
    // Spec: cpu::linear's epilogue adds the bias to each row in fp32.
    std::vector<float> expected = y;
    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < out_features; ++c) expected[size_t(r) * out_features + c] += bias[c];
    }
    if (dtype() == test::DType::kF32) {
      std::vector<float> with_bias(y.size());
      cpu::linear(x.data(), weight.data(), bias.data(), with_bias.data(), rows, in_features, out_features);
      ASSERT_TRUE(test::all_close(expected, with_bias, 1e-5f, 1e-5f)) << "reference disagrees with cpu::linear";
    }

    DeviceBuffer d_y = test::to_device(y, dtype());
    DeviceBuffer d_bias = test::to_device(bias, dtype());
    ASSERT_TRUE(d_y.ok() && d_bias.ok());
    STRATA_ASSERT_LAUNCH(cuda::bias_add(d_y.get(), d_bias.get(), rows, out_features, dtype(), stream_));
    STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
    EXPECT_TRUE(test::all_close(fetch(d_y), expected, tol().atol, tol().rtol));
  }
}

INSTANTIATE_TEST_SUITE_P(DTypes, BiasAddCuda, test::kAllDTypes, test::DTypeName());

}  // namespace
}  // namespace strata
