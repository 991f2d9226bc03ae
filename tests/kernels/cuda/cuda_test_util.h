// Helpers for the CUDA-kernel tests: device skip check, device buffers, bf16/fp16 host
// conversions and per-dtype tolerances. Seeds and comparisons come from the CPU kernel tests.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include "kernels/cuda/common.h"
#include "tests/engine/kernels/kernel_test_util.h"

namespace strata::cuda {

// GoogleTest prints a DType parameter as its name ("GetParam() = bf16").
inline void PrintTo(DType dtype, std::ostream* os) { *os << dtype_name(dtype); }

}  // namespace strata::cuda

namespace strata::test {

using cuda::DType;

// Empty when a device is usable, else why not ("cudaErrorNoDevice: no CUDA-capable device is detected").
inline std::string cuda_device_missing_reason() {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    cudaGetLastError();
    return std::string(cudaGetErrorName(error)) + ": " + cudaGetErrorString(error);
  }
  if (count == 0) return "cudaGetDeviceCount found 0 devices";
  return "";
}

// Skips the test where no device is usable; STRATA_REQUIRE_GPU=1 (set on GPU runners) turns
// that into a failure, so a driver too old for the runtime cannot pass as "skipped".
#define STRATA_REQUIRE_CUDA_DEVICE()                                                 \
  do {                                                                               \
    const std::string strata_missing = ::strata::test::cuda_device_missing_reason(); \
    if (!strata_missing.empty()) {                                                   \
      if (std::getenv("STRATA_REQUIRE_GPU") != nullptr) {                            \
        FAIL() << "no CUDA device (STRATA_REQUIRE_GPU is set): " << strata_missing;  \
      }                                                                              \
      GTEST_SKIP() << "no CUDA device: " << strata_missing;                          \
    }                                                                                \
  } while (0)

#define STRATA_ASSERT_CUDA(call)                                                               \
  do {                                                                                         \
    const cudaError_t strata_error = (call);                                                   \
    ASSERT_EQ(strata_error, cudaSuccess) << #call << ": " << cudaGetErrorString(strata_error); \
  } while (0)

#define STRATA_ASSERT_LAUNCH(call)                             \
  do {                                                         \
    const ::strata::cuda::LaunchStatus strata_status = (call); \
    ASSERT_TRUE(strata_status.ok()) << strata_status.message;  \
  } while (0)

inline const char* dtype_label(DType dtype) { return cuda::dtype_name(dtype); }

// For INSTANTIATE_TEST_SUITE_P: names the instances f32 / bf16 / f16.
struct DTypeName {
  std::string operator()(const ::testing::TestParamInfo<DType>& info) const { return dtype_label(info.param); }
};

inline const auto kAllDTypes = ::testing::Values(DType::kF32, DType::kBF16, DType::kF16);

struct Tolerance {
  float atol;
  float rtol;
};

// One rounding of an fp32 result to the dtype plus fp32 reordering: bf16 keeps 8 mantissa
// bits, fp16 11, fp32 24.
inline Tolerance tolerance(DType dtype) {
  switch (dtype) {
    case DType::kBF16:
      return {1e-2f, 1e-2f};
    case DType::kF16:
      return {2e-3f, 2e-3f};
    case DType::kF32:
      break;
  }
  return {1e-5f, 1e-5f};
}

// Unit roundoff: one rounding to the dtype moves a value by at most u |value|.
inline float unit_roundoff(DType dtype) {
  return dtype == DType::kBF16 ? 0x1p-8f : dtype == DType::kF16 ? 0x1p-11f : 0x1p-24f;
}

inline uint16_t f32_to_bf16_bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if (std::isnan(f)) return 0x7fc0;
  bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest even
  return static_cast<uint16_t>(bits >> 16);
}

inline float bf16_bits_to_f32(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t f32_to_f16_bits(float f) {
  const __half_raw raw = __float2half_rn(f);
  return raw.x;
}

inline float f16_bits_to_f32(uint16_t bits) {
  __half_raw raw;
  raw.x = bits;
  return __half2float(__half(raw));
}

// Host copy of a tensor in a dtype's bytes.
inline std::vector<uint8_t> encode(const std::vector<float>& values, DType dtype) {
  std::vector<uint8_t> bytes(values.size() * cuda::dtype_size(dtype));
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::kF32) {
      std::memcpy(bytes.data() + 4 * i, &values[i], 4);
    } else {
      const uint16_t bits = dtype == DType::kBF16 ? f32_to_bf16_bits(values[i]) : f32_to_f16_bits(values[i]);
      std::memcpy(bytes.data() + 2 * i, &bits, 2);
    }
  }
  return bytes;
}

inline std::vector<float> decode(const std::vector<uint8_t>& bytes, DType dtype) {
  const size_t n = bytes.size() / cuda::dtype_size(dtype);
  std::vector<float> values(n);
  for (size_t i = 0; i < n; ++i) {
    if (dtype == DType::kF32) {
      std::memcpy(&values[i], bytes.data() + 4 * i, 4);
    } else {
      uint16_t bits;
      std::memcpy(&bits, bytes.data() + 2 * i, 2);
      values[i] = dtype == DType::kBF16 ? bf16_bits_to_f32(bits) : f16_bits_to_f32(bits);
    }
  }
  return values;
}

// The values the dtype can hold: CPU twins run on these so both sides see the same inputs.
inline std::vector<float> round_to(const std::vector<float>& values, DType dtype) {
  return decode(encode(values, dtype), dtype);
}

// Device memory owned for one test; poison() fills it with 0xFF bytes, a NaN in every dtype.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (cudaMalloc(&ptr_, bytes == 0 ? 1 : bytes) != cudaSuccess) {
      ptr_ = nullptr;
      cudaGetLastError();
    }
  }
  ~DeviceBuffer() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  DeviceBuffer(DeviceBuffer&& other) noexcept : ptr_(other.ptr_), bytes_(other.bytes_) { other.ptr_ = nullptr; }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(DeviceBuffer&&) = delete;

  bool ok() const { return ptr_ != nullptr; }
  void* get() const { return ptr_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }

  cudaError_t upload(const void* host) { return cudaMemcpy(ptr_, host, bytes_, cudaMemcpyHostToDevice); }
  template <class T>
  cudaError_t upload(const std::vector<T>& host) {
    return host.size() * sizeof(T) == bytes_ ? upload(static_cast<const void*>(host.data())) : cudaErrorInvalidValue;
  }
  cudaError_t poison() { return cudaMemset(ptr_, 0xFF, bytes_); }
  std::vector<uint8_t> download() const {
    std::vector<uint8_t> host(bytes_);
    if (cudaMemcpy(host.data(), ptr_, bytes_, cudaMemcpyDeviceToHost) != cudaSuccess) host.assign(bytes_, 0xFF);
    return host;
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_;
};

// A device copy of `values` in `dtype`.
inline DeviceBuffer to_device(const std::vector<float>& values, DType dtype) {
  DeviceBuffer buffer(values.size() * cuda::dtype_size(dtype));
  if (buffer.ok() && buffer.upload(encode(values, dtype)) != cudaSuccess) return DeviceBuffer(0);
  return buffer;
}

// Runs each test body with a fresh stream, skipping where no device is visible.
class CudaKernelTest : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    STRATA_REQUIRE_CUDA_DEVICE();
    STRATA_ASSERT_CUDA(cudaStreamCreate(&stream_));
  }
  void TearDown() override {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  DType dtype() const { return GetParam(); }
  Tolerance tol() const { return tolerance(GetParam()); }
  std::vector<float> fetch(const DeviceBuffer& buffer) const { return decode(buffer.download(), dtype()); }

  cudaStream_t stream_ = nullptr;
};

}  // namespace strata::test
