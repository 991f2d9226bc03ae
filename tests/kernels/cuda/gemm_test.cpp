// Tests kernels/cuda/gemm.cu (GemmContext over cuBLASLt) against its CPU twin
// kernels/cpu/linear.cpp on random bf16/fp16 inputs, with and without bias, fp32 output too.
#include "kernels/cuda/gemm.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu/linear.h"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/norm.h"
#include "tests/kernels/cuda/cuda_test_util.h"

namespace strata {
namespace {

using test::CudaKernelTest;
using test::DeviceBuffer;
using test::DType;

struct LinearShape {
  int num_rows;
  int in_features;
  int out_features;
};

// Decode (1 row), a ragged batch (7), a prefill chunk (64, 300); features of a tiny model
// (72 -> 200 and back), a Llama-style projection (4096 -> 1024) and counts with no power of two
// in them (13 -> 27: leading dimensions of 26 and 54 bytes).
std::vector<LinearShape> linear_shapes() {
  std::vector<LinearShape> shapes;
  for (int rows : {1, 3, 4, 7, 64, 300}) {
    for (auto [in, out] : {std::pair{72, 200}, {200, 72}, {4096, 1024}, {13, 27}}) shapes.push_back({rows, in, out});
  }
  return shapes;
}

std::string shape_label(const LinearShape& s, DType dtype) {
  return std::to_string(s.num_rows) + "x" + std::to_string(s.in_features) + "->" + std::to_string(s.out_features) +
         " " + test::dtype_label(dtype);
}

// Error allowance of one output. Elements: |gpu - ref| <= abs_scale * sqrt(in_features) *
// max|x| * max|w| + rtol * |ref| (a dot product of in_features terms grows like the square
// root of its length). Whole tensor: ||gpu - ref|| / ||ref|| <= rel_l2.
struct GemmTolerance {
  double abs_scale;
  double rtol;
  double rel_l2;
};

// Products of bf16/fp16 values are exact in fp32, so the CPU and GPU differ by fp32 summation
// order plus, for bf16/fp16 outputs, one rounding (bf16 2^-9, fp16 2^-12 relative).
GemmTolerance gemm_tolerance(DType out_dtype) {
  switch (out_dtype) {
    case DType::kBF16:
      return {1e-2, 1e-2, 4e-3};
    case DType::kF16:
      return {2e-3, 2e-3, 1e-3};
    case DType::kF32:
      break;
  }
  return {1e-4, 1e-4, 1e-4};
}

float max_abs(const std::vector<float>& v) {
  float m = 0.0f;
  for (float x : v) m = std::fmax(m, std::fabs(x));
  return m;
}

::testing::AssertionResult close_to_reference(const std::vector<float>& actual, const std::vector<float>& expected,
                                              int in_features, float x_max, float w_max, DType out_dtype) {
  const GemmTolerance tol = gemm_tolerance(out_dtype);
  const double atol = tol.abs_scale * std::sqrt(double(in_features)) * x_max * w_max;
  const auto elementwise = test::all_close(actual, expected, float(atol), float(tol.rtol));
  if (!elementwise) return elementwise;
  double diff2 = 0.0;
  double ref2 = 0.0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double d = double(actual[i]) - double(expected[i]);
    diff2 += d * d;
    ref2 += double(expected[i]) * double(expected[i]);
  }
  const double rel = ref2 > 0.0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  if (!(rel <= tol.rel_l2)) {
    return ::testing::AssertionFailure() << "||gpu - ref|| / ||ref|| = " << rel << " > " << tol.rel_l2;
  }
  return ::testing::AssertionSuccess();
}

// Random inputs already rounded to the dtype, so the CPU twin sees what the GPU sees.
struct LinearInputs {
  std::vector<float> x;
  std::vector<float> weight;
  std::vector<float> bias;  // empty: no bias
};

LinearInputs random_inputs(std::mt19937_64& rng, const LinearShape& s, DType dtype, bool with_bias) {
  LinearInputs in;
  in.x = test::round_to(test::random_vector(rng, size_t(s.num_rows) * s.in_features, -1, 1), dtype);
  in.weight = test::round_to(test::random_vector(rng, size_t(s.out_features) * s.in_features, -1, 1), dtype);
  if (with_bias) in.bias = test::round_to(test::random_vector(rng, s.out_features, -2, 2), dtype);
  return in;
}

std::vector<float> cpu_reference(const LinearInputs& in, const LinearShape& s) {
  std::vector<float> y(size_t(s.num_rows) * s.out_features);
  cpu::linear(in.x.data(), in.weight.data(), in.bias.empty() ? nullptr : in.bias.data(), y.data(), s.num_rows,
              s.in_features, s.out_features);
  return y;
}

class GemmCuda : public CudaKernelTest {
 protected:
  void SetUp() override {
    CudaKernelTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    STRATA_ASSERT_LAUNCH(cuda::GemmContext::create(&gemm_));
  }

  // One shape through linear() (or linear_f32_out()) vs cpu::linear.
  void check_linear(std::mt19937_64& rng, const LinearShape& s, bool with_bias, bool f32_out) {
    const DType out_dtype = f32_out ? DType::kF32 : dtype();
    SCOPED_TRACE(shape_label(s, dtype()) + (with_bias ? " bias" : "") + (f32_out ? " f32-out" : ""));
    const LinearInputs in = random_inputs(rng, s, dtype(), with_bias);
    const std::vector<float> expected = cpu_reference(in, s);

    DeviceBuffer d_x = test::to_device(in.x, dtype());
    DeviceBuffer d_weight = test::to_device(in.weight, dtype());
    DeviceBuffer d_bias = test::to_device(in.bias, dtype());
    DeviceBuffer d_y(expected.size() * cuda::dtype_size(out_dtype));
    ASSERT_TRUE(d_x.ok() && d_weight.ok() && d_bias.ok() && d_y.ok());
    STRATA_ASSERT_CUDA(d_y.poison());
    if (f32_out) {
      STRATA_ASSERT_LAUNCH(gemm_->linear_f32_out(d_x.get(), d_weight.get(), d_y.as<float>(), s.num_rows, s.in_features,
                                                 s.out_features, dtype(), stream_));
    } else {
      STRATA_ASSERT_LAUNCH(gemm_->linear(d_x.get(), d_weight.get(), with_bias ? d_bias.get() : nullptr, d_y.get(),
                                         s.num_rows, s.in_features, s.out_features, dtype(), stream_));
    }
    STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
    EXPECT_TRUE(close_to_reference(test::decode(d_y.download(), out_dtype), expected, s.in_features, max_abs(in.x),
                                   max_abs(in.weight), out_dtype));
  }

  std::unique_ptr<cuda::GemmContext> gemm_;
};

TEST_P(GemmCuda, MatchesCpuLinear) {
  STRATA_SEEDED_RNG(rng);
  for (const LinearShape& s : linear_shapes()) {
    check_linear(rng, s, /*with_bias=*/false, /*f32_out=*/false);
    if (HasFatalFailure()) return;
  }
}

TEST_P(GemmCuda, MatchesCpuLinearWithBias) {
  STRATA_SEEDED_RNG(rng);
  for (const LinearShape& s : linear_shapes()) {
    check_linear(rng, s, /*with_bias=*/true, /*f32_out=*/false);
    if (HasFatalFailure()) return;
  }
}

TEST_P(GemmCuda, F32OutputMatchesCpuLinear) {
  STRATA_SEEDED_RNG(rng);
  for (const LinearShape& s : linear_shapes()) {
    check_linear(rng, s, /*with_bias=*/false, /*f32_out=*/true);
    if (HasFatalFailure()) return;
  }
}

// Pointers only 2-byte aligned (views into the middle of a buffer, e.g. one head's slice)
// get a plan of their own whose kernels do not assume 16 or 256 bytes.
TEST_P(GemmCuda, UnalignedPointersMatchCpuLinear) {
  STRATA_SEEDED_RNG(rng);
  const LinearShape s{7, 72, 200};
  const LinearInputs in = random_inputs(rng, s, dtype(), /*with_bias=*/true);
  const std::vector<float> expected = cpu_reference(in, s);
  const size_t es = cuda::dtype_size(dtype());
  // One spare element in front of each tensor; the tensors start at element 1.
  auto shifted = [&](const std::vector<float>& values) {
    std::vector<float> padded(values.size() + 1, 0.0f);
    std::copy(values.begin(), values.end(), padded.begin() + 1);
    return test::to_device(padded, dtype());
  };
  DeviceBuffer d_x = shifted(in.x);
  DeviceBuffer d_weight = shifted(in.weight);
  DeviceBuffer d_bias = shifted(in.bias);
  DeviceBuffer d_y((expected.size() + 1) * es);
  ASSERT_TRUE(d_x.ok() && d_weight.ok() && d_bias.ok() && d_y.ok());
  STRATA_ASSERT_CUDA(d_y.poison());
  auto at1 = [es](const DeviceBuffer& b) { return static_cast<char*>(b.get()) + es; };
  STRATA_ASSERT_LAUNCH(gemm_->linear(at1(d_x), at1(d_weight), at1(d_bias), at1(d_y), s.num_rows, s.in_features,
                                     s.out_features, dtype(), stream_));
  STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
  std::vector<float> y = fetch(d_y);
  EXPECT_TRUE(std::isnan(y[0])) << "the element before y was written";
  y.erase(y.begin());
  EXPECT_TRUE(close_to_reference(y, expected, s.in_features, max_abs(in.x), max_abs(in.weight), dtype()));
}

TEST_P(GemmCuda, CachesOnePlanPerShape) {
  STRATA_SEEDED_RNG(rng);
  const LinearShape s{7, 72, 200};
  const LinearInputs in = random_inputs(rng, s, dtype(), /*with_bias=*/false);
  DeviceBuffer d_x = test::to_device(in.x, dtype());
  DeviceBuffer d_weight = test::to_device(in.weight, dtype());
  DeviceBuffer d_y(size_t(s.num_rows) * s.out_features * cuda::dtype_size(dtype()));
  ASSERT_TRUE(d_x.ok() && d_weight.ok() && d_y.ok());
  auto run = [&](int rows) {
    return gemm_->linear(d_x.get(), d_weight.get(), nullptr, d_y.get(), rows, s.in_features, s.out_features, dtype(),
                         stream_);
  };
  EXPECT_EQ(gemm_->num_cached_plans(), 0u);
  STRATA_ASSERT_LAUNCH(run(s.num_rows));
  EXPECT_EQ(gemm_->num_cached_plans(), 1u);
  STRATA_ASSERT_LAUNCH(run(s.num_rows));
  EXPECT_EQ(gemm_->num_cached_plans(), 1u) << "the same shape must reuse its plan";
  STRATA_ASSERT_LAUNCH(run(s.num_rows - 1));
  EXPECT_EQ(gemm_->num_cached_plans(), 2u);
  STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
}

// The runner captures decode steps into CUDA graphs: once a shape's plan is cached, a linear
// records into a graph and its replay computes the same function.
TEST_P(GemmCuda, ReplaysFromCudaGraph) {
  STRATA_SEEDED_RNG(rng);
  const LinearShape s{4, 200, 72};
  const LinearInputs in = random_inputs(rng, s, dtype(), /*with_bias=*/true);
  const std::vector<float> expected = cpu_reference(in, s);
  DeviceBuffer d_x = test::to_device(in.x, dtype());
  DeviceBuffer d_weight = test::to_device(in.weight, dtype());
  DeviceBuffer d_bias = test::to_device(in.bias, dtype());
  DeviceBuffer d_y(expected.size() * cuda::dtype_size(dtype()));
  ASSERT_TRUE(d_x.ok() && d_weight.ok() && d_bias.ok() && d_y.ok());
  auto run = [&] {
    return gemm_->linear(d_x.get(), d_weight.get(), d_bias.get(), d_y.get(), s.num_rows, s.in_features, s.out_features,
                         dtype(), stream_);
  };
  STRATA_ASSERT_LAUNCH(run());  // caches the plan outside the capture
  STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));

  cudaGraph_t graph = nullptr;
  STRATA_ASSERT_CUDA(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  const cuda::LaunchStatus captured = run();
  STRATA_ASSERT_CUDA(cudaStreamEndCapture(stream_, &graph));
  ASSERT_TRUE(captured.ok()) << captured.message;
  cudaGraphExec_t exec = nullptr;
  const cudaError_t instantiated = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  STRATA_ASSERT_CUDA(instantiated);
  STRATA_ASSERT_CUDA(d_y.poison());
  const cudaError_t launched = cudaGraphLaunch(exec, stream_);
  const cudaError_t synced = cudaStreamSynchronize(stream_);
  cudaGraphExecDestroy(exec);
  STRATA_ASSERT_CUDA(launched);
  STRATA_ASSERT_CUDA(synced);
  EXPECT_TRUE(close_to_reference(fetch(d_y), expected, s.in_features, max_abs(in.x), max_abs(in.weight), dtype()));
}

TEST_P(GemmCuda, ZeroRowsWritesNothing) {
  DeviceBuffer d_x(72 * cuda::dtype_size(dtype()));
  DeviceBuffer d_weight(200 * 72 * cuda::dtype_size(dtype()));
  DeviceBuffer d_y(200 * cuda::dtype_size(dtype()));
  ASSERT_TRUE(d_x.ok() && d_weight.ok() && d_y.ok());
  STRATA_ASSERT_CUDA(d_y.poison());
  STRATA_ASSERT_LAUNCH(gemm_->linear(d_x.get(), d_weight.get(), nullptr, d_y.get(), 0, 72, 200, dtype(), stream_));
  STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
  for (float v : fetch(d_y)) ASSERT_TRUE(std::isnan(v)) << "y was written for num_rows = 0";
  EXPECT_EQ(gemm_->num_cached_plans(), 0u);
}

TEST_P(GemmCuda, RejectsInvalidArgumentsWithShape) {
  DeviceBuffer d_x(7 * 72 * cuda::dtype_size(dtype()));
  DeviceBuffer d_weight(200 * 72 * cuda::dtype_size(dtype()));
  DeviceBuffer d_y(7 * 200 * cuda::dtype_size(dtype()));
  ASSERT_TRUE(d_x.ok() && d_weight.ok() && d_y.ok());
  auto expect_rejected = [](const cuda::LaunchStatus& status, const char* what) {
    EXPECT_EQ(status.error, cudaErrorInvalidValue) << what;
    EXPECT_NE(status.message.find("in_features=72"), std::string::npos) << what << ": " << status.message;
  };
  expect_rejected(gemm_->linear(d_x.get(), d_weight.get(), nullptr, d_y.get(), 7, 72, 200, DType::kF32, stream_),
                  "f32 inputs");
  expect_rejected(gemm_->linear(d_x.get(), nullptr, nullptr, d_y.get(), 7, 72, 200, dtype(), stream_), "null weight");
  expect_rejected(gemm_->linear(d_x.get(), d_weight.get(), nullptr, d_x.get(), 7, 72, 200, dtype(), stream_),
                  "y aliasing x");
  expect_rejected(gemm_->linear(d_x.get(), d_weight.get(), nullptr, d_y.get(), -1, 72, 200, dtype(), stream_),
                  "negative num_rows");
  EXPECT_EQ(gemm_->num_cached_plans(), 0u);
}

// linear_silu_and_mul is linear() into gate_up then silu_and_mul(), bit for bit: one row takes
// the gated GEMV (in_features % 8 == 0) or cuBLASLt (13), more rows the two launches.
TEST_P(GemmCuda, LinearSiluAndMulMatchesLinearThenSiluAndMul) {
  STRATA_SEEDED_RNG(rng);
  const size_t es = cuda::dtype_size(dtype());
  for (int rows : {1, 3}) {
    for (auto [in, inter] : {std::pair{72, 100}, {4096, 1024}, {200, 37}, {13, 20}}) {
      SCOPED_TRACE(std::to_string(rows) + "x" + std::to_string(in) + "->2x" + std::to_string(inter));
      const auto x = test::round_to(test::random_vector(rng, size_t(rows) * in, -1, 1), dtype());
      const auto weight = test::round_to(test::random_vector(rng, size_t(2 * inter) * in, -1, 1), dtype());
      DeviceBuffer d_x = test::to_device(x, dtype());
      DeviceBuffer d_weight = test::to_device(weight, dtype());
      DeviceBuffer d_gate_up(size_t(rows) * 2 * inter * es), d_scratch(size_t(rows) * 2 * inter * es);
      DeviceBuffer d_expected(size_t(rows) * inter * es), d_out(size_t(rows) * inter * es);
      ASSERT_TRUE(d_x.ok() && d_weight.ok() && d_gate_up.ok() && d_scratch.ok() && d_expected.ok() && d_out.ok());
      STRATA_ASSERT_CUDA(d_expected.poison());
      STRATA_ASSERT_CUDA(d_out.poison());
      STRATA_ASSERT_LAUNCH(
          gemm_->linear(d_x.get(), d_weight.get(), nullptr, d_gate_up.get(), rows, in, 2 * inter, dtype(), stream_));
      STRATA_ASSERT_LAUNCH(cuda::silu_and_mul(d_gate_up.get(), d_expected.get(), rows, inter, dtype(), stream_));
      STRATA_ASSERT_LAUNCH(gemm_->linear_silu_and_mul(d_x.get(), d_weight.get(), d_scratch.get(), d_out.get(), rows, in,
                                                      inter, dtype(), stream_));
      STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
      const auto expected = d_expected.download();
      const auto actual = d_out.download();
      for (size_t i = 0; i < actual.size(); i += es) {
        ASSERT_TRUE(std::equal(actual.begin() + i, actual.begin() + i + es, expected.begin() + i))
            << "element " << i / es << ": " << fetch(d_out)[i / es] << " vs " << fetch(d_expected)[i / es];
      }
    }
  }
}

// A decode-shaped chain of programmatic dependents (norm -> GEMV -> gated GEMV -> GEMV ->
// norm), captured into a CUDA graph and replayed, gives the bits of the same launches run one
// at a time with a full synchronization between them: no kernel reads or overwrites a buffer
// before the kernel it depends on is done.
TEST_P(GemmCuda, DependentLaunchChainReplaysFromCudaGraph) {
  STRATA_SEEDED_RNG(rng);
  const int hidden = 512, inter = 1536;
  const size_t es = cuda::dtype_size(dtype());
  DeviceBuffer d_x = test::to_device(test::random_vector(rng, hidden, -2, 2), dtype());
  DeviceBuffer d_norm_weight = test::to_device(test::random_vector(rng, hidden, 0.5f, 1.5f), dtype());
  DeviceBuffer d_w1 = test::to_device(test::random_vector(rng, size_t(hidden) * hidden, -0.1f, 0.1f), dtype());
  DeviceBuffer d_w2 = test::to_device(test::random_vector(rng, size_t(2 * inter) * hidden, -0.1f, 0.1f), dtype());
  DeviceBuffer d_w3 = test::to_device(test::random_vector(rng, size_t(hidden) * inter, -0.1f, 0.1f), dtype());
  DeviceBuffer d_normed(hidden * es), d_h(hidden * es), d_act(inter * es), d_y(hidden * es), d_out(hidden * es);
  ASSERT_TRUE(d_x.ok() && d_norm_weight.ok() && d_w1.ok() && d_w2.ok() && d_w3.ok() && d_normed.ok() && d_h.ok() &&
              d_act.ok() && d_y.ok() && d_out.ok());
  // Each step reads only the previous step's output (and constants).
  const auto step = [&](int i) -> cuda::LaunchStatus {
    switch (i) {
      case 0:
        return cuda::rms_norm(d_x.get(), d_norm_weight.get(), d_normed.get(), 1, hidden, 1e-5f, dtype(), stream_);
      case 1:
        return gemm_->linear(d_normed.get(), d_w1.get(), nullptr, d_h.get(), 1, hidden, hidden, dtype(), stream_);
      case 2:
        return gemm_->linear_silu_and_mul(d_h.get(), d_w2.get(), nullptr, d_act.get(), 1, hidden, inter, dtype(),
                                          stream_);
      case 3:
        return gemm_->linear(d_act.get(), d_w3.get(), nullptr, d_y.get(), 1, inter, hidden, dtype(), stream_);
      default:
        return cuda::rms_norm(d_y.get(), d_norm_weight.get(), d_out.get(), 1, hidden, 1e-5f, dtype(), stream_);
    }
  };
  constexpr int kSteps = 5;
  DeviceBuffer* outputs[kSteps] = {&d_normed, &d_h, &d_act, &d_y, &d_out};
  std::vector<std::vector<uint8_t>> expected;
  for (int i = 0; i < kSteps; ++i) {
    STRATA_ASSERT_LAUNCH(step(i));
    STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
    expected.push_back(outputs[i]->download());
  }

  cudaGraph_t graph = nullptr;
  STRATA_ASSERT_CUDA(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  cuda::LaunchStatus captured;
  for (int i = 0; i < kSteps && captured.ok(); ++i) captured = step(i);
  STRATA_ASSERT_CUDA(cudaStreamEndCapture(stream_, &graph));
  ASSERT_TRUE(captured.ok()) << captured.message;
  cudaGraphExec_t exec = nullptr;
  const cudaError_t instantiated = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  STRATA_ASSERT_CUDA(instantiated);
  for (int replay = 0; replay < 20; ++replay) {
    for (DeviceBuffer* out : outputs) {
      const cudaError_t poisoned = out->poison();
      if (poisoned != cudaSuccess) cudaGraphExecDestroy(exec);
      STRATA_ASSERT_CUDA(poisoned);
    }
    const cudaError_t launched = cudaGraphLaunch(exec, stream_);
    const cudaError_t synced = cudaStreamSynchronize(stream_);
    if (launched != cudaSuccess || synced != cudaSuccess) cudaGraphExecDestroy(exec);
    STRATA_ASSERT_CUDA(launched);
    STRATA_ASSERT_CUDA(synced);
    for (int i = 0; i < kSteps; ++i) {
      if (outputs[i]->download() != expected[i]) {
        cudaGraphExecDestroy(exec);
        FAIL() << "replay " << replay << ": step " << i << " differs from the serialized run";
      }
    }
  }
  cudaGraphExecDestroy(exec);
}

INSTANTIATE_TEST_SUITE_P(DTypes, GemmCuda, ::testing::Values(DType::kBF16, DType::kF16), test::DTypeName());

// Where no device exists, create() reports it instead of crashing; runs on CPU-only machines.
TEST(GemmContextWithoutDevice, CreateReportsMissingDevice) {
  if (test::cuda_device_missing_reason().empty()) GTEST_SKIP() << "a CUDA device is present";
  std::unique_ptr<cuda::GemmContext> gemm;
  const cuda::LaunchStatus status = cuda::GemmContext::create(&gemm);
  EXPECT_FALSE(status.ok());
  EXPECT_FALSE(status.message.empty());
  EXPECT_EQ(gemm, nullptr);
}

}  // namespace
}  // namespace strata
