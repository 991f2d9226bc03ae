// Tests kernels/cuda/embedding.cu against its CPU twin kernels/cpu/embedding.cpp, and that
// out-of-range token ids give zero rows instead of reads past the table.
#include "kernels/cuda/embedding.h"

#include <climits>

#include "kernels/cpu/embedding.h"
#include "tests/kernels/cuda/cuda_test_util.h"

namespace strata {
namespace {

using test::CudaKernelTest;
using test::DeviceBuffer;

class EmbeddingLookupCuda : public CudaKernelTest {};

TEST_P(EmbeddingLookupCuda, MatchesCpuTwin) {
  STRATA_SEEDED_RNG(rng);
  for (auto [vocab, hidden, tokens] : {std::tuple{1, 8, 1}, {1000, 4096, 17}, {513, 1001, 9}, {64, 7, 70000}}) {
    SCOPED_TRACE(std::to_string(vocab) + "x" + std::to_string(hidden) + ", " + std::to_string(tokens) + " tokens");
    const auto table = test::round_to(test::random_vector(rng, size_t(vocab) * hidden, -1, 1), dtype());
    std::vector<int32_t> ids(tokens);
    for (auto& id : ids) id = test::random_int(rng, 0, vocab - 1);
    ids.back() = vocab - 1;
    std::vector<float> expected(size_t(tokens) * hidden);
    cpu::embedding_lookup(ids.data(), tokens, table.data(), hidden, expected.data());

    DeviceBuffer d_table = test::to_device(table, dtype());
    DeviceBuffer d_ids(ids.size() * sizeof(int32_t));
    DeviceBuffer d_out(expected.size() * cuda::dtype_size(dtype()));
    ASSERT_TRUE(d_table.ok() && d_ids.ok() && d_out.ok());
    STRATA_ASSERT_CUDA(d_ids.upload(ids));
    STRATA_ASSERT_CUDA(d_out.poison());
    STRATA_ASSERT_LAUNCH(cuda::embedding_lookup(d_ids.as<int32_t>(), tokens, d_table.get(), vocab, hidden, d_out.get(),
                                                dtype(), stream_));
    STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
    EXPECT_TRUE(test::all_close(fetch(d_out), expected, 0.0f)) << "a lookup is an exact copy";
  }
}

TEST_P(EmbeddingLookupCuda, OutOfRangeIdsGiveZeroRows) {
  STRATA_SEEDED_RNG(rng);
  const int vocab = 100, hidden = 256;
  const auto table = test::round_to(test::random_vector(rng, size_t(vocab) * hidden, -1, 1), dtype());
  const std::vector<int32_t> ids = {5, -1, vocab, INT32_MAX, INT32_MIN, vocab - 1, 0};
  const int tokens = static_cast<int>(ids.size());
  std::vector<float> expected(size_t(tokens) * hidden, 0.0f);
  for (int t = 0; t < tokens; ++t) {
    if (ids[t] >= 0 && ids[t] < vocab) cpu::embedding_lookup(&ids[t], 1, table.data(), hidden, &expected[t * hidden]);
  }

  DeviceBuffer d_table = test::to_device(table, dtype());
  DeviceBuffer d_ids(ids.size() * sizeof(int32_t));
  DeviceBuffer d_out(expected.size() * cuda::dtype_size(dtype()));
  ASSERT_TRUE(d_table.ok() && d_ids.ok() && d_out.ok());
  STRATA_ASSERT_CUDA(d_ids.upload(ids));
  STRATA_ASSERT_CUDA(d_out.poison());
  STRATA_ASSERT_LAUNCH(
      cuda::embedding_lookup(d_ids.as<int32_t>(), tokens, d_table.get(), vocab, hidden, d_out.get(), dtype(), stream_));
  STRATA_ASSERT_CUDA(cudaStreamSynchronize(stream_));
  EXPECT_TRUE(test::all_close(fetch(d_out), expected, 0.0f));
}

INSTANTIATE_TEST_SUITE_P(DTypes, EmbeddingLookupCuda, test::kAllDTypes, test::DTypeName());

}  // namespace
}  // namespace strata
