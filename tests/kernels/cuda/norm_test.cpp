// Tests kernels/cuda/norm.cu (RMSNorm family) against its CPU twin kernels/cpu/norm.cpp.
#include "kernels/cuda/norm.h"

#include "kernels/cpu/norm.h"
#include "tests/kernels/cuda/cuda_test_util.h"

namespace strata {
namespace {

using test::CudaKernelTest;
using test::DeviceBuffer;

constexpr float kEps = 1e-6f;

// Rows for vectorized and element-wise paths (dim % 8 != 0), one wide row, and more rows
// than the launcher's grid so the grid-stride loop runs.
const std::vector<std::pair<int, int>> kRowShapes = {{1, 8}, {3, 7}, {5, 1001}, {7, 4096}, {2, 5120}, {70001, 8}};

class RmsNormCuda : public CudaKernelTest {};

TEST_P(RmsNormCuda, MatchesCpuTwin) {
  STRATA_SEEDED_RNG(rng);
  for (auto [rows, dim] : kRowShapes) {
    SCOPED_TRACE(std::to_string(rows) + "x" + std::to_string(dim) + " " + test::dtype_label(dtype()));
    const auto x = test::round_to(test::random_vector(rng, size_t(rows) * dim, -3, 3), dtype());
    const auto weight = test::round_to(test::random_vector(rng, dim, 0.5f, 1.5f), dtype());
    std::vector<float> expected(x.size());
    cpu::rms_norm(x.data(), weight.data(), expected.data(), rows, dim, kEps);

    DeviceBuffer d_x = test::to_device(x, dtype());
    DeviceBuffer d_weight = test::to_device(weight, dtype());
    DeviceBuffer d_out(d_x.bytes());
    ASSERT_TRUE(d_x.ok() && d_weight.ok() && d_out.ok());
    STRATA_ASSERT_CUDA(d_out.poison());
    STRATA_ASSERT_LAUNCH(cuda::rms_norm(d_x.get(), d_weight.get(), d_out.get(), rows, dim, kEps, dtype(), stream_));
    STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
    EXPECT_TRUE(test::all_close(fetch(d_out), expected, tol().atol, tol().rtol));
    EXPECT_TRUE(test::all_close(fetch(d_x), x, 0.0f)) << "x must be left unchanged";
  }
}

TEST_P(RmsNormCuda, InPlaceMatchesCpuTwin) {
  STRATA_SEEDED_RNG(rng);
  for (auto [rows, dim] : {std::pair{4, 4096}, {3, 1003}}) {
    SCOPED_TRACE(std::to_string(rows) + "x" + std::to_string(dim));
    const auto x = test::round_to(test::random_vector(rng, size_t(rows) * dim, -3, 3), dtype());
    const auto weight = test::round_to(test::random_vector(rng, dim, 0.5f, 1.5f), dtype());
    std::vector<float> expected(x.size());
    cpu::rms_norm(x.data(), weight.data(), expected.data(), rows, dim, kEps);

    DeviceBuffer d_x = test::to_device(x, dtype());
    DeviceBuffer d_weight = test::to_device(weight, dtype());
    ASSERT_TRUE(d_x.ok() && d_weight.ok());
    STRATA_ASSERT_LAUNCH(cuda::rms_norm(d_x.get(), d_weight.get(), d_x.get(), rows, dim, kEps, dtype(), stream_));
    STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
    EXPECT_TRUE(test::all_close(fetch(d_x), expected, tol().atol, tol().rtol));
  }
}

class FusedAddRmsNormCuda : public CudaKernelTest {};

TEST_P(FusedAddRmsNormCuda, UpdatesResidualAndMatchesCpuTwin) {
  STRATA_SEEDED_RNG(rng);
  for (auto [rows, dim] : kRowShapes) {
    SCOPED_TRACE(std::to_string(rows) + "x" + std::to_string(dim) + " " + test::dtype_label(dtype()));
    const auto residual = test::round_to(test::random_vector(rng, size_t(rows) * dim, -3, 3), dtype());
    const auto x = test::round_to(test::random_vector(rng, size_t(rows) * dim, -3, 3), dtype());
    const auto weight = test::round_to(test::random_vector(rng, dim, 0.5f, 1.5f), dtype());
    std::vector<float> expected_residual = residual;
    std::vector<float> expected(x.size());
    cpu::fused_add_rms_norm(expected_residual.data(), x.data(), weight.data(), expected.data(), rows, dim, kEps);

    DeviceBuffer d_residual = test::to_device(residual, dtype());
    DeviceBuffer d_x = test::to_device(x, dtype());
    DeviceBuffer d_weight = test::to_device(weight, dtype());
    DeviceBuffer d_out(d_x.bytes());
    ASSERT_TRUE(d_residual.ok() && d_x.ok() && d_weight.ok() && d_out.ok());
    STRATA_ASSERT_CUDA(d_out.poison());
    STRATA_ASSERT_LAUNCH(cuda::fused_add_rms_norm(d_residual.get(), d_x.get(), d_weight.get(), d_out.get(), rows, dim,
                                                  kEps, dtype(), stream_));
    STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
    // The GPU rounds residual + x to the dtype (as HF's bf16 residual stream) before the norm.
    EXPECT_TRUE(test::all_close(fetch(d_residual), expected_residual, tol().atol, tol().rtol)) << "residual";
    EXPECT_TRUE(test::all_close(fetch(d_out), expected, 2 * tol().atol, 2 * tol().rtol)) << "out";
  }
}

TEST_P(FusedAddRmsNormCuda, OutMayAliasX) {
  STRATA_SEEDED_RNG(rng);
  const int rows = 6, dim = 2048;
  const auto residual = test::round_to(test::random_vector(rng, size_t(rows) * dim, -3, 3), dtype());
  const auto x = test::round_to(test::random_vector(rng, size_t(rows) * dim, -3, 3), dtype());
  const auto weight = test::round_to(test::random_vector(rng, dim, 0.5f, 1.5f), dtype());
  std::vector<float> expected_residual = residual;
  std::vector<float> expected(x.size());
  cpu::fused_add_rms_norm(expected_residual.data(), x.data(), weight.data(), expected.data(), rows, dim, kEps);

  DeviceBuffer d_residual = test::to_device(residual, dtype());
  DeviceBuffer d_x = test::to_device(x, dtype());
  DeviceBuffer d_weight = test::to_device(weight, dtype());
  ASSERT_TRUE(d_residual.ok() && d_x.ok() && d_weight.ok());
  STRATA_ASSERT_LAUNCH(cuda::fused_add_rms_norm(d_residual.get(), d_x.get(), d_weight.get(), d_x.get(), rows, dim, kEps,
                                                dtype(), stream_));
  STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
  EXPECT_TRUE(test::all_close(fetch(d_residual), expected_residual, tol().atol, tol().rtol));
  EXPECT_TRUE(test::all_close(fetch(d_x), expected, 2 * tol().atol, 2 * tol().rtol));
}

class HeadRmsNormCuda : public CudaKernelTest {};

// Qwen3 q_norm / k_norm on the q and k parts of a fused [q | k | v] row; v must stay as it was.
TEST_P(HeadRmsNormCuda, NormalizesQAndKHeadsOfFusedQkv) {
  STRATA_SEEDED_RNG(rng);
  struct Shape {
    int tokens, q_heads, kv_heads, head_dim;
  };
  for (const Shape s :
       {Shape{1, 2, 1, 64}, Shape{9, 16, 8, 128}, Shape{5, 3, 1, 36}, Shape{3, 4, 2, 256}, Shape{40000, 2, 1, 8}}) {
    SCOPED_TRACE(std::to_string(s.tokens) + " tokens, " + std::to_string(s.q_heads) + "/" + std::to_string(s.kv_heads) +
                 " heads of " + std::to_string(s.head_dim));
    const int64_t stride = int64_t(s.q_heads + 2 * s.kv_heads) * s.head_dim;
    const auto qkv = test::round_to(test::random_vector(rng, size_t(s.tokens) * stride, -3, 3), dtype());
    const auto q_weight = test::round_to(test::random_vector(rng, s.head_dim, 0.5f, 1.5f), dtype());
    const auto k_weight = test::round_to(test::random_vector(rng, s.head_dim, 0.5f, 1.5f), dtype());
    std::vector<float> expected = qkv;
    cpu::head_rms_norm(expected.data(), s.tokens, s.q_heads, s.head_dim, stride, q_weight.data(), kEps);
    cpu::head_rms_norm(expected.data() + int64_t(s.q_heads) * s.head_dim, s.tokens, s.kv_heads, s.head_dim, stride,
                       k_weight.data(), kEps);

    DeviceBuffer d_qkv = test::to_device(qkv, dtype());
    DeviceBuffer d_q_weight = test::to_device(q_weight, dtype());
    DeviceBuffer d_k_weight = test::to_device(k_weight, dtype());
    ASSERT_TRUE(d_qkv.ok() && d_q_weight.ok() && d_k_weight.ok());
    const size_t k_offset_bytes = size_t(s.q_heads) * s.head_dim * cuda::dtype_size(dtype());
    STRATA_ASSERT_LAUNCH(cuda::head_rms_norm(d_qkv.get(), s.tokens, s.q_heads, s.head_dim, stride, d_q_weight.get(),
                                             kEps, dtype(), stream_));
    STRATA_ASSERT_LAUNCH(cuda::head_rms_norm(d_qkv.as<uint8_t>() + k_offset_bytes, s.tokens, s.kv_heads, s.head_dim,
                                             stride, d_k_weight.get(), kEps, dtype(), stream_));
    STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
    const auto actual = fetch(d_qkv);
    EXPECT_TRUE(test::all_close(actual, expected, tol().atol, tol().rtol));
    for (int t = 0; t < s.tokens; ++t) {
      for (int64_t i = int64_t(s.q_heads + s.kv_heads) * s.head_dim; i < stride; ++i) {
        ASSERT_EQ(actual[t * stride + i], qkv[t * stride + i]) << "v changed at token " << t << ", element " << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(DTypes, RmsNormCuda, test::kAllDTypes, test::DTypeName());
INSTANTIATE_TEST_SUITE_P(DTypes, FusedAddRmsNormCuda, test::kAllDTypes, test::DTypeName());
INSTANTIATE_TEST_SUITE_P(DTypes, HeadRmsNormCuda, test::kAllDTypes, test::DTypeName());

}  // namespace
}  // namespace strata
