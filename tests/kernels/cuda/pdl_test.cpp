// launch_pdl (kernels/cuda/common.cuh) on the device: in a CUDA graph the dependent kernel
// starts while the kernel before it still runs, and its griddepcontrol.wait returns only
// after that kernel ends. Every kernel's reads of step inputs before its wait rely on both.
#include <cstdint>
#include <vector>

#include "tests/kernels/cuda/cuda_test_util.h"
#include "tests/kernels/cuda/pdl_spin.h"

namespace strata {
namespace {

// Launches the spin kernel and the timestamp kernel on `stream` (captured into a CUDA graph and
// replayed when `as_graph`, as decode steps are) and returns {before wait, after wait, spin end}.
std::vector<uint64_t> spin_then_timestamps(cudaStream_t stream, uint64_t* t, bool as_graph) {
  std::vector<uint64_t> host(3, 0);
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  if (as_graph) {
    EXPECT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed), cudaSuccess);
  }
  EXPECT_EQ(test::launch_pdl_spin(stream, 200, t + 2), cudaSuccess);
  EXPECT_EQ(test::launch_pdl_timestamps(stream, t), cudaSuccess);
  if (as_graph) {
    EXPECT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
    EXPECT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    EXPECT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
  }
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(host.data(), t, 3 * sizeof(uint64_t), cudaMemcpyDeviceToHost), cudaSuccess);
  if (exec != nullptr) cudaGraphExecDestroy(exec);
  if (graph != nullptr) cudaGraphDestroy(graph);
  return host;
}

TEST(LaunchPdl, DependentStartsBeforeThePreviousKernelEndsAndWaitsForIt) {
  STRATA_REQUIRE_CUDA_DEVICE();
  cudaStream_t stream = nullptr;
  STRATA_ASSERT_CUDA(cudaStreamCreate(&stream));
  test::DeviceBuffer times(3 * sizeof(uint64_t));
  ASSERT_TRUE(times.ok());
  for (const bool as_graph : {false, true}) {
    SCOPED_TRACE(as_graph ? "CUDA graph" : "stream launches");
    const std::vector<uint64_t> t = spin_then_timestamps(stream, times.as<uint64_t>(), as_graph);
    const double before_wait_us = (double(t[2]) - double(t[0])) / 1000.0;
    const double after_wait_us = (double(t[1]) - double(t[2])) / 1000.0;
    // Stream launches may or may not overlap (on an H200 with CUDA 13.0 they did not: the
    // dependent started ~4 us after); graph replays, which decode steps are, must.
    if (as_graph) {
      EXPECT_GT(before_wait_us, 0.0) << "the dependent started " << -before_wait_us
                                     << " us after the previous kernel ended: no overlap";
    }
    EXPECT_GE(after_wait_us, 0.0) << "griddepcontrol.wait returned before the previous kernel ended";
    std::printf("%s: the dependent started %.1f us before the previous kernel ended; its wait returned %.1f us after\n",
                as_graph ? "graph" : "stream", before_wait_us, after_wait_us);
  }
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace strata
