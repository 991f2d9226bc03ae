// What the benchmarks share: device kernels (a device-to-device copy in 16-byte vectors, the
// memory bandwidth ceiling, and a random fill: benchmarks never run on zeros), CUDA-event timing
// of repeated calls, and the copy-ceiling measurement itself.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kernels/cuda/common.h"

namespace strata::bench {

enum class CopyKernel {
  kOneVectorPerThread,  // one 16-byte load and store per thread, a grid covering the buffer
  kGridStrideUnrolled,  // a persistent grid (blocks_per_sm per SM), four 16-byte loads in flight per thread
};

const char* copy_kernel_name(CopyKernel kernel);

// dst[0, bytes) = src[0, bytes). bytes % 16 == 0; src and dst 16-byte aligned and disjoint.
cuda::LaunchStatus copy_vectors(void* dst, const void* src, size_t bytes, CopyKernel kernel, int num_sms,
                                cudaStream_t stream);

// One way of copying device to device: cudaMemcpyAsync, or one of the copy kernels.
struct CopyMethod {
  std::string name;
  std::function<cuda::LaunchStatus(void* dst, const void* src, size_t bytes, cudaStream_t stream)> copy;
};

// The ways the copy ceiling takes the best of: cudaMemcpyAsync, then each CopyKernel.
std::vector<CopyMethod> copy_methods(int num_sms);

// data[i] = lo + (hi - lo) * u_i in dtype, u_i in [0, 1) from a hash of (seed, i): the same seed
// gives the same values on every run.
cuda::LaunchStatus fill_uniform(void* data, size_t count, cuda::DType dtype, float lo, float hi, uint64_t seed,
                                cudaStream_t stream);

// ok for cudaSuccess, else "what: cudaErrorName: description" (the error is also cleared from
// cudaGetLastError when it is not sticky).
cuda::LaunchStatus cuda_status(cudaError_t error, const std::string& what);

// Per-call times of one measured operation.
struct Timing {
  double best_ms = 0;
  double median_ms = 0;
  std::vector<double> rep_ms;  // per call: a repetition's time over its calls
};

// Times `reps` repetitions of `calls` enqueues each with CUDA events on `stream`, after `warmups`
// untimed repetitions. enqueue(i) enqueues call number i (counted across warm-ups and
// repetitions, so a caller can rotate input sets by i); the first failure is returned.
cuda::LaunchStatus time_calls(cudaStream_t stream, int warmups, int reps, int calls,
                              const std::function<cuda::LaunchStatus(int)>& enqueue, Timing* timing);

// Calls per repetition so that one repetition lasts >= target_ms (event resolution and launch
// gaps stay small against it), a multiple of `multiple_of`, at most about 20000.
int calls_for(double ms_per_call, double target_ms, int multiple_of);

// The device, driver, runtime and cuBLASLt versions, for the JSON reports.
nlohmann::json device_info(const cudaDeviceProp& prop);

// Device 0 for a benchmark: its properties and a fresh non-blocking stream; an error when no
// CUDA device answers.
cuda::LaunchStatus open_device(cudaDeviceProp* prop, cudaStream_t* stream);

// One way of copying device to device, timed over buffers of bytes_each_way.
struct CopyRate {
  std::string method;
  size_t bytes_each_way = 0;
  Timing timing;
  double best_gbps = 0;    // (read + written bytes) / best time
  double median_gbps = 0;  // (read + written bytes) / median time
};

// The copy ceiling (METHOD.md): cudaMemcpyAsync and both copy kernels over two random buffers
// of `bytes_each_way` (>= 1 MiB, rounded down to 16 bytes), GB/s counting bytes read plus
// written; a sampled check that every byte arrived (a copy that skipped bytes is no ceiling).
cuda::LaunchStatus measure_copy_rates(size_t bytes_each_way, int warmups, int reps, int num_sms, cudaStream_t stream,
                                      std::vector<CopyRate>* rates);

}  // namespace strata::bench
