// Owning handles of device memory (DeviceBuffer, cudaMalloc) and page-locked host memory
// (PinnedBuffer, cudaMallocHost): move-only, freed on destruction, no exceptions.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>
#include <utility>

#include "kernels/cuda/common.h"

namespace strata::cuda {

namespace detail {

// Owns size_bytes_ at ptr_ and frees them with Free (cudaFree or cudaFreeHost).
template <cudaError_t (*Free)(void*)>
class CudaMemory {
 public:
  CudaMemory() = default;
  ~CudaMemory() { reset(); }
  CudaMemory(CudaMemory&& other) noexcept
      : ptr_(std::exchange(other.ptr_, nullptr)), size_bytes_(std::exchange(other.size_bytes_, 0)) {}
  CudaMemory& operator=(CudaMemory&& other) noexcept {
    if (this != &other) {
      reset();
      ptr_ = std::exchange(other.ptr_, nullptr);
      size_bytes_ = std::exchange(other.size_bytes_, 0);
    }
    return *this;
  }
  CudaMemory(const CudaMemory&) = delete;
  CudaMemory& operator=(const CudaMemory&) = delete;

  void* get() const { return ptr_; }
  template <class T>
  T* data() const {
    return static_cast<T*>(ptr_);
  }
  size_t size_bytes() const { return size_bytes_; }
  // Elements of T that fit.
  template <class T>
  size_t size() const {
    return size_bytes_ / sizeof(T);
  }
  bool empty() const { return ptr_ == nullptr; }
  explicit operator bool() const { return ptr_ != nullptr; }

  // Frees now (an implicit device synchronization for cudaFree).
  void reset() {
    if (ptr_ != nullptr) Free(ptr_);
    ptr_ = nullptr;
    size_bytes_ = 0;
  }

 protected:
  template <class Alloc>
  static LaunchStatus allocate(CudaMemory* out, size_t size_bytes, const char* call, Alloc alloc) {
    out->reset();
    if (size_bytes == 0) return {};
    void* ptr = nullptr;
    const cudaError_t error = alloc(&ptr, size_bytes);
    if (error != cudaSuccess) {
      cudaGetLastError();  // an allocation failure is not sticky; keep it out of the next launch check
      return LaunchStatus{error, std::string(call) + " [bytes=" + std::to_string(size_bytes) +
                                     "]: " + cudaGetErrorName(error) + ": " + cudaGetErrorString(error)};
    }
    out->ptr_ = ptr;
    out->size_bytes_ = size_bytes;
    return {};
  }

 private:
  void* ptr_ = nullptr;
  size_t size_bytes_ = 0;
};

inline cudaError_t free_device(void* ptr) { return cudaFree(ptr); }
inline cudaError_t free_pinned(void* ptr) { return cudaFreeHost(ptr); }

}  // namespace detail

// Device memory from cudaMalloc (256-byte aligned), on the device current at create().
// create(&buffer, 0) gives an empty buffer and succeeds.
class DeviceBuffer : public detail::CudaMemory<detail::free_device> {
 public:
  static LaunchStatus create(DeviceBuffer* out, size_t size_bytes) {
    return allocate(out, size_bytes, "cudaMalloc", [](void** ptr, size_t bytes) { return cudaMalloc(ptr, bytes); });
  }
};

// Page-locked host memory from cudaMallocHost: the host side of asynchronous copies.
class PinnedBuffer : public detail::CudaMemory<detail::free_pinned> {
 public:
  static LaunchStatus create(PinnedBuffer* out, size_t size_bytes) {
    return allocate(out, size_bytes, "cudaMallocHost",
                    [](void** ptr, size_t bytes) { return cudaMallocHost(ptr, bytes); });
  }
};

}  // namespace strata::cuda
