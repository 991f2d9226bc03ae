// Kernels of the benchmarks (16-byte-vector copies and a hash-based uniform fill) and their host
// helpers: event timing, device information and the copy-ceiling measurement.
#include <cublasLt.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/device_buffer.h"
#include "tests/bench/bench_kernels.h"

namespace strata::bench {
namespace {

constexpr int kCopyThreads = 256;
constexpr int kBlocksPerSm = 8;  // 8 x 256 threads: a full H100/H200 multiprocessor (2048 threads)

// n 16-byte vectors; one per thread.
__global__ void copy_one_vector_kernel(int4* __restrict__ dst, const int4* __restrict__ src, size_t n) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = src[i];
}

// n 16-byte vectors; each thread issues four independent loads before its first store.
__global__ void copy_grid_stride_kernel(int4* __restrict__ dst, const int4* __restrict__ src, size_t n) {
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for (; i + 3 * stride < n; i += 4 * stride) {
    const int4 a = src[i];
    const int4 b = src[i + stride];
    const int4 c = src[i + 2 * stride];
    const int4 d = src[i + 3 * stride];
    dst[i] = a;
    dst[i + stride] = b;
    dst[i + 2 * stride] = c;
    dst[i + 3 * stride] = d;
  }
  for (; i < n; i += stride) dst[i] = src[i];
}

// SplitMix64 finalizer (Steele, Lea, Flood 2014): a counter-based generator, one value per index.
__device__ __forceinline__ uint64_t splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

template <class T>
__global__ void fill_uniform_kernel(T* __restrict__ data, size_t count, float lo, float span, uint64_t seed) {
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const uint64_t bits = splitmix64(seed + 0x9e3779b97f4a7c15ull * (i + 1));
    const float u = float(bits >> 40) * (1.0f / 16777216.0f);  // 24 bits -> [0, 1)
    data[i] = cuda::from_float<T>(lo + span * u);
  }
}

}  // namespace

const char* copy_kernel_name(CopyKernel kernel) {
  return kernel == CopyKernel::kOneVectorPerThread ? "copy_one_vector_kernel" : "copy_grid_stride_kernel";
}

cuda::LaunchStatus copy_vectors(void* dst, const void* src, size_t bytes, CopyKernel kernel, int num_sms,
                                cudaStream_t stream) {
  const char* name = copy_kernel_name(kernel);
  const cuda::ShapeArgs shape = {{"bytes", int64_t(bytes)}, {"num_sms", num_sms}};
  if (bytes % 16 != 0 || !cuda::is_aligned_16(dst) || !cuda::is_aligned_16(src) || num_sms <= 0) {
    return cuda::invalid_argument(name, cuda::DType::kF32, shape,
                                  "need bytes % 16 == 0, aligned pointers, num_sms > 0");
  }
  const size_t n = bytes / 16;
  if (n == 0) return {};
  int4* d = static_cast<int4*>(dst);
  const int4* s = static_cast<const int4*>(src);
  if (kernel == CopyKernel::kOneVectorPerThread) {
    const size_t blocks = (n + kCopyThreads - 1) / kCopyThreads;
    if (blocks > 0x7fffffffu) return cuda::invalid_argument(name, cuda::DType::kF32, shape, "buffer too large");
    copy_one_vector_kernel<<<unsigned(blocks), kCopyThreads, 0, stream>>>(d, s, n);
  } else {
    copy_grid_stride_kernel<<<unsigned(num_sms * kBlocksPerSm), kCopyThreads, 0, stream>>>(d, s, n);
  }
  return cuda::check_launch(name, cuda::DType::kF32, shape);
}

cuda::LaunchStatus fill_uniform(void* data, size_t count, cuda::DType dtype, float lo, float hi, uint64_t seed,
                                cudaStream_t stream) {
  const cuda::ShapeArgs shape = {{"count", int64_t(count)}};
  if (count == 0) return {};
  return cuda::dispatch_dtype(dtype, [&](auto tag) -> cuda::LaunchStatus {
    using T = typename decltype(tag)::type;
    const size_t blocks = (count + 255) / 256;
    const unsigned grid = unsigned(blocks < 65536 ? blocks : 65536);
    fill_uniform_kernel<T><<<grid, 256, 0, stream>>>(static_cast<T*>(data), count, lo, hi - lo, seed);
    return cuda::check_launch("fill_uniform_kernel", dtype, shape);
  });
}

cuda::LaunchStatus cuda_status(cudaError_t error, const std::string& what) {
  if (error == cudaSuccess) return {};
  cudaGetLastError();
  return cuda::LaunchStatus{error, what + ": " + cudaGetErrorName(error) + ": " + cudaGetErrorString(error)};
}

cuda::LaunchStatus time_calls(cudaStream_t stream, int warmups, int reps, int calls,
                              const std::function<cuda::LaunchStatus(int)>& enqueue, Timing* timing) {
  *timing = Timing{};
  if (reps < 1 || calls < 1) return cuda::LaunchStatus{cudaErrorInvalidValue, "time_calls: need reps >= 1, calls >= 1"};
  cudaEvent_t start = nullptr;
  cudaEvent_t stop = nullptr;
  cuda::LaunchStatus status = cuda_status(cudaEventCreate(&start), "cudaEventCreate");
  if (status.ok()) status = cuda_status(cudaEventCreate(&stop), "cudaEventCreate");
  int call = 0;
  for (int w = 0; w < warmups && status.ok(); ++w) {
    for (int c = 0; c < calls && status.ok(); ++c) status = enqueue(call++);
  }
  if (status.ok()) status = cuda_status(cudaStreamSynchronize(stream), "the warm-up calls");
  for (int r = 0; r < reps && status.ok(); ++r) {
    status = cuda_status(cudaEventRecord(start, stream), "cudaEventRecord");
    for (int c = 0; c < calls && status.ok(); ++c) status = enqueue(call++);
    if (status.ok()) status = cuda_status(cudaEventRecord(stop, stream), "cudaEventRecord");
    if (status.ok()) status = cuda_status(cudaEventSynchronize(stop), "the timed calls");
    float ms = 0.0f;
    if (status.ok()) status = cuda_status(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    if (status.ok()) timing->rep_ms.push_back(double(ms) / calls);
  }
  if (start != nullptr) cudaEventDestroy(start);
  if (stop != nullptr) cudaEventDestroy(stop);
  if (!status.ok()) return status;
  std::vector<double> sorted = timing->rep_ms;
  std::sort(sorted.begin(), sorted.end());
  timing->best_ms = sorted.front();
  const size_t mid = sorted.size() / 2;
  timing->median_ms = sorted.size() % 2 == 1 ? sorted[mid] : 0.5 * (sorted[mid - 1] + sorted[mid]);
  return {};
}

int calls_for(double ms_per_call, double target_ms, int multiple_of) {
  int calls = ms_per_call > 0 ? int(std::ceil(target_ms / ms_per_call)) : 1;
  calls = std::clamp(calls, 1, 20000);
  return (calls + multiple_of - 1) / multiple_of * multiple_of;
}

cuda::LaunchStatus open_device(cudaDeviceProp* prop, cudaStream_t* stream) {
  int device_count = 0;
  if (const cudaError_t error = cudaGetDeviceCount(&device_count); error != cudaSuccess) {
    return cuda_status(error, "cudaGetDeviceCount (no CUDA device?)");
  }
  if (device_count == 0) return cuda_status(cudaErrorNoDevice, "no CUDA device");
  if (const cudaError_t error = cudaGetDeviceProperties(prop, 0); error != cudaSuccess) {
    return cuda_status(error, "cudaGetDeviceProperties");
  }
  return cuda_status(cudaStreamCreateWithFlags(stream, cudaStreamNonBlocking), "cudaStreamCreate");
}

nlohmann::json device_info(const cudaDeviceProp& prop) {
  int driver = 0;
  int runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  return {{"name", prop.name},
          {"compute_capability", std::to_string(prop.major) + "." + std::to_string(prop.minor)},
          {"multiprocessors", prop.multiProcessorCount},
          {"l2_bytes", prop.l2CacheSize},
          {"global_memory_bytes", prop.totalGlobalMem},
          {"driver_version", driver},
          {"runtime_version", runtime},
          {"cublaslt_version", cublasLtGetVersion()}};
}

namespace {

// Sampled windows of dst must equal src.
cuda::LaunchStatus check_copied(const cuda::DeviceBuffer& dst, const cuda::DeviceBuffer& src,
                                const std::string& method) {
  constexpr size_t kWindow = 1u << 20;
  const size_t bytes = src.size_bytes();
  std::vector<unsigned char> a(kWindow);
  std::vector<unsigned char> b(kWindow);
  for (size_t offset : {size_t{0}, bytes / 2 / 16 * 16, bytes - kWindow}) {
    const size_t n = std::min(kWindow, bytes - offset);
    cuda::LaunchStatus status =
        cuda_status(cudaMemcpy(a.data(), src.data<unsigned char>() + offset, n, cudaMemcpyDeviceToHost), "cudaMemcpy");
    if (status.ok()) {
      status = cuda_status(cudaMemcpy(b.data(), dst.data<unsigned char>() + offset, n, cudaMemcpyDeviceToHost),
                           "cudaMemcpy");
    }
    if (!status.ok()) return status;
    // Not a CUDA error, but the measurement is void all the same.
    if (std::memcmp(a.data(), b.data(), n) != 0) return {cudaErrorUnknown, method + " did not copy every byte"};
  }
  return {};
}

}  // namespace

std::vector<CopyMethod> copy_methods(int num_sms) {
  std::vector<CopyMethod> methods;
  methods.push_back({"cudaMemcpyAsync", [](void* dst, const void* src, size_t bytes, cudaStream_t stream) {
                       return cuda_status(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream),
                                          "cudaMemcpyAsync");
                     }});
  for (CopyKernel kernel : {CopyKernel::kOneVectorPerThread, CopyKernel::kGridStrideUnrolled}) {
    methods.push_back({copy_kernel_name(kernel), [kernel, num_sms](void* dst, const void* src, size_t bytes,
                                                                   cudaStream_t stream) {
                         return copy_vectors(dst, src, bytes, kernel, num_sms, stream);
                       }});
  }
  return methods;
}

cuda::LaunchStatus measure_copy_rates(size_t bytes_each_way, int warmups, int reps, int num_sms, cudaStream_t stream,
                                      std::vector<CopyRate>* rates) {
  rates->clear();
  const size_t bytes = bytes_each_way / 16 * 16;
  if (bytes < (1u << 20)) return {cudaErrorInvalidValue, "copy buffers too small (need >= 1 MiB)"};
  cuda::DeviceBuffer src;
  cuda::DeviceBuffer dst;
  cuda::LaunchStatus status = cuda::DeviceBuffer::create(&src, bytes);
  if (status.ok()) status = cuda::DeviceBuffer::create(&dst, bytes);
  if (status.ok()) status = fill_uniform(src.get(), bytes / 4, cuda::DType::kF32, -1.0f, 1.0f, 1, stream);
  auto measure = [&](const std::string& method, const std::function<cuda::LaunchStatus(int)>& enqueue) {
    if (!status.ok()) return;
    status = cuda_status(cudaMemsetAsync(dst.get(), 0xFF, bytes, stream), "cudaMemsetAsync");
    CopyRate rate{method, bytes, {}, 0, 0};
    if (status.ok()) status = time_calls(stream, warmups, reps, 1, enqueue, &rate.timing);
    if (status.ok()) status = check_copied(dst, src, method);
    if (!status.ok()) return;
    const double moved = 2.0 * double(bytes);  // read + written
    rate.best_gbps = moved / (rate.timing.best_ms * 1e6);
    rate.median_gbps = moved / (rate.timing.median_ms * 1e6);
    rates->push_back(std::move(rate));
  };
  for (const CopyMethod& method : copy_methods(num_sms)) {
    measure(method.name, [&](int) { return method.copy(dst.get(), src.get(), bytes, stream); });
  }
  return status;
}

}  // namespace strata::bench
