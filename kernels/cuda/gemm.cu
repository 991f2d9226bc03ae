// GemmContext: y = x W^T (+ bias) through cublasLtMatmul, with descriptors and the heuristic's
// algorithm cached per (shape, dtypes, bias, pointer alignments).
//
// Row-major trick: cuBLASLt is column-major, and a row-major [r, c] matrix is the same bytes as
// a column-major [c, r] one. So row-major y[num_rows, out] = x · W^T is column-major
// y^T[out, num_rows] = W · x^T, with
//   A = W:   column-major [in, out] (ld in), transa = T -> op(A) = W   [out, in]
//   B = x:   column-major [in, num_rows] (ld in), transb = N -> x^T    [in, num_rows]
//   C = D = y: column-major [out, num_rows] (ld out)
// i.e. cuBLAS m = out_features, n = num_rows, k = in_features. The bias epilogue adds a vector
// of length m (D's rows) to every column: bias[out_features] added to each row of y.
#include <cublasLt.h>

#include <cstdint>
#include <list>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "kernels/cuda/activation.cuh"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/gemm.h"

namespace strata::cuda {
namespace {

// More distinct shapes than this (num_rows varies per step) evict the least recently used plan.
constexpr size_t kMaxPlans = 4096;
// cuBLASLt's own default alignment assumption; pointers are classed up to it.
constexpr int kMaxAlignmentLog2 = 8;

struct PlanKey {
  int num_rows;
  int in_features;
  int out_features;
  uint8_t dtype;
  uint8_t out_dtype;
  uint8_t has_bias;
  // log2 of each pointer's alignment, capped at 256 bytes: the heuristic picks kernels that
  // may assume it, so a plan is valid only for pointers aligned at least as well.
  uint8_t x_align;
  uint8_t weight_align;
  uint8_t y_align;
  uint8_t bias_align;

  bool operator==(const PlanKey& o) const {
    return num_rows == o.num_rows && in_features == o.in_features && out_features == o.out_features &&
           dtype == o.dtype && out_dtype == o.out_dtype && has_bias == o.has_bias && x_align == o.x_align &&
           weight_align == o.weight_align && y_align == o.y_align && bias_align == o.bias_align;
  }
};

struct PlanKeyHash {
  size_t operator()(const PlanKey& k) const {
    uint64_t h = 1469598103934665603ull;  // FNV-1a over the fields
    auto mix = [&h](uint64_t v) {
      h ^= v;
      h *= 1099511628211ull;
    };
    mix(static_cast<uint32_t>(k.num_rows));
    mix(static_cast<uint32_t>(k.in_features));
    mix(static_cast<uint32_t>(k.out_features));
    mix(uint64_t{k.dtype} | uint64_t{k.out_dtype} << 8 | uint64_t{k.has_bias} << 16 | uint64_t{k.x_align} << 24 |
        uint64_t{k.weight_align} << 32 | uint64_t{k.y_align} << 40 | uint64_t{k.bias_align} << 48);
    return static_cast<size_t>(h);
  }
};

uint8_t alignment_log2(const void* p) {
  const uintptr_t address = reinterpret_cast<uintptr_t>(p);
  if (address == 0) return kMaxAlignmentLog2;
  const int bits = __builtin_ctzll(static_cast<unsigned long long>(address));
  return static_cast<uint8_t>(bits < kMaxAlignmentLog2 ? bits : kMaxAlignmentLog2);
}

cudaDataType_t cuda_data_type(DType dtype) {
  switch (dtype) {
    case DType::kBF16:
      return CUDA_R_16BF;
    case DType::kF16:
      return CUDA_R_16F;
    case DType::kF32:
      break;
  }
  return CUDA_R_32F;
}

cudaError_t to_cuda_error(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS:
      return cudaSuccess;
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return cudaErrorInitializationError;
    case CUBLAS_STATUS_ALLOC_FAILED:
      return cudaErrorMemoryAllocation;
    case CUBLAS_STATUS_INVALID_VALUE:
      return cudaErrorInvalidValue;
    case CUBLAS_STATUS_ARCH_MISMATCH:
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return cudaErrorNotSupported;
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return cudaErrorLaunchFailure;
    default:
      return cudaErrorUnknown;
  }
}

// "dtype=bf16 out_dtype=f32 bias=0 num_rows=7 in_features=72 out_features=200"
std::string gemm_shape(DType dtype, DType out_dtype, bool has_bias, int num_rows, int in_features, int out_features) {
  return std::string("dtype=") + dtype_name(dtype) + " out_dtype=" + dtype_name(out_dtype) +
         " bias=" + (has_bias ? "1" : "0") + " num_rows=" + std::to_string(num_rows) +
         " in_features=" + std::to_string(in_features) + " out_features=" + std::to_string(out_features);
}

LaunchStatus cublas_failure(const char* call, const std::string& shape, cublasStatus_t status) {
  return LaunchStatus{to_cuda_error(status), std::string(call) + " [" + shape + "]: " + cublasLtGetStatusName(status) +
                                                 ": " + cublasLtGetStatusString(status)};
}

bool overlaps(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  const auto a0 = reinterpret_cast<uintptr_t>(a);
  const auto b0 = reinterpret_cast<uintptr_t>(b);
  return a0 < b0 + b_bytes && b0 < a0 + a_bytes;
}

// A one-row product (batch-1 decode) is a pass over W: one warp per output feature streams its
// weight row in 16-byte vectors (kGemvUnroll loads in flight per lane) and keeps the dot
// product in fp32. On an H200 it took Llama-3-8B batch-1 decode from 5.23 to 4.85 ms
// (cuBLASLt's m = 1 kernels read W at 57-93% of the copy bandwidth). With 4 rows it was slower
// than cuBLASLt (each W vector then needs 4 x loads), so only m = 1 takes it. Needs
// in_features % 8 == 0 and 16-byte aligned x and W (else cuBLASLt runs).
//
// It is launched as a programmatic dependent (common.cuh): each warp issues its first group of
// weight loads (weights are constants) before it waits on the previous kernel, which at batch 1
// is a one-block norm or another GEMV's tail, and releases the next kernel once its last group
// of weight loads is issued, so that kernel's blocks are resident while this one drains.
//
// The gated form runs the fused gate_up_proj ([gate | up] rows, 2 * inter of them): the warp of
// output i computes rows i and inter + i, exactly as two plain rows (same lane order, same warp
// sum), and writes silu_mul_element of the two rounded sums, i.e. linear() then silu_and_mul()
// bit for bit, without their second launch and the [1, 2 * inter] round trip between them.
constexpr int kGemvMaxRows = 1;
constexpr int kGemvWarps = 8;
constexpr int kGemvUnroll = 4;

bool gemv_applies(int num_rows, int in_features, const void* x, const void* weight) {
  return num_rows <= kGemvMaxRows && in_features % 8 == 0 && alignment_log2(x) >= 4 && alignment_log2(weight) >= 4;
}

// acc += the dot product of 8 weights and 8 x values, in element order (fp32 FMAs).
template <class T>
__device__ __forceinline__ void dot_accumulate(float& acc, const uint4& wv, const uint4& xm) {
  const T* wt = reinterpret_cast<const T*>(&wv);
  const T* xt = reinterpret_cast<const T*>(&xm);
#pragma unroll
  for (int e = 0; e < 8; ++e) acc += to_float(wt[e]) * to_float(xt[e]);
}

// x: [in_features]; weight: [out_features, in_features] ([2 * out_features, in_features] when
// kGated); bias: [out_features] or nullptr (never with kGated); y: [out_features]. x is
// written by the previous kernel while this grid may already run, so it is read with plain
// (coherent) loads after the wait, never through the read-only (.nc) path.
template <class T, class OutT, bool kGated>
__global__ void __launch_bounds__(kGemvWarps * 32)
    gemv_kernel(const T* x, const T* __restrict__ weight, const T* __restrict__ bias, OutT* __restrict__ y,
                int in_features, int out_features) {
  static_assert(!kGated || std::is_same_v<T, OutT>, "the gated GEMV writes the activation dtype");
  constexpr int kVec = 8;  // bf16/fp16 per 16 bytes
  constexpr int kRows = kGated ? 2 : 1;
  const int row = static_cast<int>(blockIdx.x) * kGemvWarps + static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const bool active = row < out_features;  // whole warps; inactive ones still wait and release
  const int vectors = in_features / kVec;
  // Row r of the warp starts r * row_gap vectors after its first (the up row of a gated pair).
  const uint4* w = reinterpret_cast<const uint4*>(weight + static_cast<size_t>(active ? row : 0) * in_features);
  const size_t row_gap = static_cast<size_t>(out_features) * vectors;
  const uint4* xv = reinterpret_cast<const uint4*>(x);
  float acc[kRows] = {};
  uint4 wv[kGemvUnroll][kRows];
  int v = lane;
  const auto load_group = [&] {
#pragma unroll
    for (int u = 0; u < kGemvUnroll; ++u) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) wv[u][r] = __ldcs(w + r * row_gap + v + 32 * u);  // streamed: read once
    }
  };
  bool group = active && v + 32 * (kGemvUnroll - 1) < vectors;
  if (group) load_group();
  wait_for_prior_grid();  // x is the previous kernel's output
  while (group) {
#pragma unroll
    for (int u = 0; u < kGemvUnroll; ++u) {
      const uint4 xm = xv[v + 32 * u];
#pragma unroll
      for (int r = 0; r < kRows; ++r) dot_accumulate<T>(acc[r], wv[u][r], xm);
    }
    v += 32 * kGemvUnroll;
    group = v + 32 * (kGemvUnroll - 1) < vectors;
    if (group) load_group();
  }
  launch_dependent_grids();
  if (active) {
    for (; v < vectors; v += 32) {
      const uint4 xm = xv[v];
#pragma unroll
      for (int r = 0; r < kRows; ++r) dot_accumulate<T>(acc[r], __ldcs(w + r * row_gap + v), xm);
    }
  }
  float sum[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) sum[r] = warp_sum(acc[r]);
  if (active && lane == 0) {
    if constexpr (kGated) {
      y[row] = silu_mul_element(from_float<T>(sum[0]), from_float<T>(sum[1]));
    } else {
      y[row] = from_float<OutT>(bias == nullptr ? sum[0] : sum[0] + to_float(bias[row]));
    }
  }
}

template <class T, class OutT, bool kGated>
LaunchStatus launch_gemv(const void* x, const void* weight, const void* bias, void* y, int in_features,
                         int out_features, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((out_features + kGemvWarps - 1) / kGemvWarps));
  const dim3 block(kGemvWarps * 32);
  const auto* xt = static_cast<const T*>(x);
  const auto* wt = static_cast<const T*>(weight);
  const auto* bt = static_cast<const T*>(bias);
  auto* yt = static_cast<OutT*>(y);
  const cudaError_t error =
      launch_pdl(gemv_kernel<T, OutT, kGated>, grid, block, 0, stream, xt, wt, bt, yt, in_features, out_features);
  if (error != cudaSuccess) {
    cudaGetLastError();  // reported here; keep it from the next launch's check
    return LaunchStatus{error, std::string(kGated ? "gemv_kernel (gated)" : "gemv_kernel") + " [in_features=" +
                                   std::to_string(in_features) + " out_features=" + std::to_string(out_features) +
                                   "]: " + cudaGetErrorName(error) + ": " + cudaGetErrorString(error)};
  }
  return {};
}

LaunchStatus gemv(const void* x, const void* weight, const void* bias, void* y, int in_features, int out_features,
                  DType dtype, DType out_dtype, cudaStream_t stream) {
  if (dtype == DType::kBF16) {
    return out_dtype == DType::kF32
               ? launch_gemv<__nv_bfloat16, float, false>(x, weight, bias, y, in_features, out_features, stream)
               : launch_gemv<__nv_bfloat16, __nv_bfloat16, false>(x, weight, bias, y, in_features, out_features,
                                                                  stream);
  }
  return out_dtype == DType::kF32
             ? launch_gemv<__half, float, false>(x, weight, bias, y, in_features, out_features, stream)
             : launch_gemv<__half, __half, false>(x, weight, bias, y, in_features, out_features, stream);
}

}  // namespace

// The descriptors of one shape and the algorithm the heuristic chose for it.
struct GemmContext::Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t weight_layout = nullptr;
  cublasLtMatrixLayout_t x_layout = nullptr;
  cublasLtMatrixLayout_t y_layout = nullptr;
  cublasLtMatmulAlgo_t algo{};

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    if (y_layout != nullptr) cublasLtMatrixLayoutDestroy(y_layout);
    if (x_layout != nullptr) cublasLtMatrixLayoutDestroy(x_layout);
    if (weight_layout != nullptr) cublasLtMatrixLayoutDestroy(weight_layout);
    if (op != nullptr) cublasLtMatmulDescDestroy(op);
  }
};

// Least-recently-used map from PlanKey to Plan.
struct GemmContext::PlanCache {
  using Entry = std::pair<PlanKey, std::unique_ptr<Plan>>;
  std::list<Entry> by_recency;  // front = most recent
  std::unordered_map<PlanKey, std::list<Entry>::iterator, PlanKeyHash> index;

  Plan* find(const PlanKey& key) {
    const auto it = index.find(key);
    if (it == index.end()) return nullptr;
    by_recency.splice(by_recency.begin(), by_recency, it->second);
    return it->second->second.get();
  }

  Plan* insert(const PlanKey& key, std::unique_ptr<Plan> plan) {
    by_recency.emplace_front(key, std::move(plan));
    index[key] = by_recency.begin();
    if (by_recency.size() > kMaxPlans) {
      index.erase(by_recency.back().first);
      by_recency.pop_back();
    }
    return by_recency.front().second.get();
  }
};

GemmContext::GemmContext() : plans_(std::make_unique<PlanCache>()) {}

GemmContext::~GemmContext() {
  plans_.reset();
  if (workspace_ != nullptr) cudaFree(workspace_);
  if (handle_ != nullptr) cublasLtDestroy(handle_);
}

LaunchStatus GemmContext::create(std::unique_ptr<GemmContext>* out, size_t workspace_bytes) {
  out->reset();
  std::unique_ptr<GemmContext> context(new GemmContext());
  const cublasStatus_t status = cublasLtCreate(&context->handle_);
  if (status != CUBLAS_STATUS_SUCCESS) {
    context->handle_ = nullptr;
    return cublas_failure("cublasLtCreate", "workspace_bytes=" + std::to_string(workspace_bytes), status);
  }
  if (workspace_bytes > 0) {
    const cudaError_t error = cudaMalloc(&context->workspace_, workspace_bytes);
    if (error != cudaSuccess) {
      cudaGetLastError();
      context->workspace_ = nullptr;
      return LaunchStatus{error, "GemmContext workspace [workspace_bytes=" + std::to_string(workspace_bytes) +
                                     "]: cudaMalloc: " + cudaGetErrorName(error) + ": " + cudaGetErrorString(error)};
    }
  }
  context->workspace_bytes_ = workspace_bytes;
  *out = std::move(context);
  return {};
}

size_t GemmContext::num_cached_plans() const { return plans_->by_recency.size(); }

LaunchStatus GemmContext::linear(const void* x, const void* weight, const void* bias, void* y, int num_rows,
                                 int in_features, int out_features, DType dtype, cudaStream_t stream) {
  return matmul(x, weight, bias, y, num_rows, in_features, out_features, dtype, dtype, stream);
}

LaunchStatus GemmContext::linear_f32_out(const void* x, const void* weight, float* y, int num_rows, int in_features,
                                         int out_features, DType dtype, cudaStream_t stream) {
  return matmul(x, weight, nullptr, y, num_rows, in_features, out_features, dtype, DType::kF32, stream);
}

LaunchStatus GemmContext::linear_silu_and_mul(const void* x, const void* weight, void* gate_up, void* out, int num_rows,
                                              int in_features, int inter, DType dtype, cudaStream_t stream) {
  auto invalid = [&](const char* why) {
    return LaunchStatus{
        cudaErrorInvalidValue,
        "linear_silu_and_mul [" + gemm_shape(dtype, dtype, false, num_rows, in_features, 2 * inter) + "]: " + why};
  };
  if (dtype != DType::kBF16 && dtype != DType::kF16) return invalid("dtype must be bf16 or f16");
  if (num_rows < 0 || in_features <= 0 || inter <= 0)
    return invalid("need num_rows >= 0, in_features > 0 and inter > 0");
  if (num_rows == 0) return {};
  if (x == nullptr || weight == nullptr || out == nullptr) return invalid("x, weight and out must be non-null");
  const size_t element_bytes = dtype_size(dtype);
  const size_t out_bytes = size_t(num_rows) * size_t(inter) * element_bytes;
  if (overlaps(out, out_bytes, x, size_t(num_rows) * size_t(in_features) * element_bytes) ||
      overlaps(out, out_bytes, weight, 2 * size_t(inter) * size_t(in_features) * element_bytes)) {
    return invalid("out may not alias x or weight");
  }
  if (gemv_applies(num_rows, in_features, x, weight)) {
    return dtype == DType::kBF16
               ? launch_gemv<__nv_bfloat16, __nv_bfloat16, true>(x, weight, nullptr, out, in_features, inter, stream)
               : launch_gemv<__half, __half, true>(x, weight, nullptr, out, in_features, inter, stream);
  }
  if (gate_up == nullptr) return invalid("gate_up must be non-null for more than one row");
  const LaunchStatus status = linear(x, weight, nullptr, gate_up, num_rows, in_features, 2 * inter, dtype, stream);
  if (!status.ok()) return status;
  return silu_and_mul(gate_up, out, num_rows, inter, dtype, stream);
}

LaunchStatus GemmContext::matmul(const void* x, const void* weight, const void* bias, void* y, int num_rows,
                                 int in_features, int out_features, DType dtype, DType out_dtype, cudaStream_t stream) {
  const bool has_bias = bias != nullptr;
  auto shape = [&] { return gemm_shape(dtype, out_dtype, has_bias, num_rows, in_features, out_features); };
  auto invalid = [&](const char* why) { return LaunchStatus{cudaErrorInvalidValue, "gemm [" + shape() + "]: " + why}; };
  if (dtype != DType::kBF16 && dtype != DType::kF16) return invalid("dtype must be bf16 or f16");
  if (num_rows < 0 || in_features <= 0 || out_features <= 0) {
    return invalid("need num_rows >= 0, in_features > 0 and out_features > 0");
  }
  if (num_rows == 0) return {};
  if (x == nullptr || weight == nullptr || y == nullptr) return invalid("x, weight and y must be non-null");
  const size_t element_bytes = dtype_size(dtype);
  const size_t y_bytes = size_t(num_rows) * size_t(out_features) * dtype_size(out_dtype);
  if (overlaps(y, y_bytes, x, size_t(num_rows) * size_t(in_features) * element_bytes) ||
      overlaps(y, y_bytes, weight, size_t(out_features) * size_t(in_features) * element_bytes) ||
      (has_bias && overlaps(y, y_bytes, bias, size_t(out_features) * element_bytes))) {
    return invalid("y may not alias x, weight or bias");
  }
  if (gemv_applies(num_rows, in_features, x, weight)) {
    return gemv(x, weight, bias, y, in_features, out_features, dtype, out_dtype, stream);
  }

  const PlanKey key{num_rows,
                    in_features,
                    out_features,
                    static_cast<uint8_t>(dtype),
                    static_cast<uint8_t>(out_dtype),
                    static_cast<uint8_t>(has_bias),
                    alignment_log2(x),
                    alignment_log2(weight),
                    alignment_log2(y),
                    has_bias ? alignment_log2(bias) : uint8_t{kMaxAlignmentLog2}};
  Plan* plan = plans_->find(key);
  if (plan == nullptr) {
    auto fresh = std::make_unique<Plan>();
    const cudaDataType_t in_type = cuda_data_type(dtype);
    const cudaDataType_t out_type = cuda_data_type(out_dtype);
    cublasStatus_t status = cublasLtMatmulDescCreate(&fresh->op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    if (status != CUBLAS_STATUS_SUCCESS) return cublas_failure("cublasLtMatmulDescCreate", shape(), status);
    const int32_t transa = CUBLAS_OP_T;
    const int32_t transb = CUBLAS_OP_N;
    const uint32_t epilogue = has_bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    const int32_t bias_type = in_type;
    status = cublasLtMatmulDescSetAttribute(fresh->op, CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof(transa));
    if (status == CUBLAS_STATUS_SUCCESS) {
      status = cublasLtMatmulDescSetAttribute(fresh->op, CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof(transb));
    }
    if (status == CUBLAS_STATUS_SUCCESS) {
      status = cublasLtMatmulDescSetAttribute(fresh->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue));
    }
    if (status == CUBLAS_STATUS_SUCCESS && has_bias) {
      status =
          cublasLtMatmulDescSetAttribute(fresh->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof(bias_type));
    }
    if (status == CUBLAS_STATUS_SUCCESS && has_bias) {
      // The heuristic reads the pointer's alignment (cublasLt.h); each call sets it again.
      status = cublasLtMatmulDescSetAttribute(fresh->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias));
    }
    if (status != CUBLAS_STATUS_SUCCESS) return cublas_failure("cublasLtMatmulDescSetAttribute", shape(), status);

    status = cublasLtMatrixLayoutCreate(&fresh->weight_layout, in_type, uint64_t(in_features), uint64_t(out_features),
                                        int64_t(in_features));
    if (status == CUBLAS_STATUS_SUCCESS) {
      status = cublasLtMatrixLayoutCreate(&fresh->x_layout, in_type, uint64_t(in_features), uint64_t(num_rows),
                                          int64_t(in_features));
    }
    if (status == CUBLAS_STATUS_SUCCESS) {
      status = cublasLtMatrixLayoutCreate(&fresh->y_layout, out_type, uint64_t(out_features), uint64_t(num_rows),
                                          int64_t(out_features));
    }
    if (status != CUBLAS_STATUS_SUCCESS) return cublas_failure("cublasLtMatrixLayoutCreate", shape(), status);

    cublasLtMatmulPreference_t preference = nullptr;
    status = cublasLtMatmulPreferenceCreate(&preference);
    if (status != CUBLAS_STATUS_SUCCESS) return cublas_failure("cublasLtMatmulPreferenceCreate", shape(), status);
    const uint64_t max_workspace = workspace_bytes_;
    // fp32 accumulation end to end: split-K partial sums stay in fp32 (workspace), never in
    // the bf16/fp16 output type (OUTPUT_TYPE, INPLACE).
    const uint32_t reduction_mask = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
    const uint32_t align_x = 1u << key.x_align;
    const uint32_t align_weight = 1u << key.weight_align;
    const uint32_t align_y = 1u << key.y_align;
    const std::pair<cublasLtMatmulPreferenceAttributes_t, const void*> preferences[] = {
        {CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_workspace},
        {CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &reduction_mask},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_weight},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_x},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_y},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_y},
    };
    for (const auto& [attribute, value] : preferences) {
      if (status != CUBLAS_STATUS_SUCCESS) break;
      const size_t size = attribute == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES ? sizeof(uint64_t) : sizeof(uint32_t);
      status = cublasLtMatmulPreferenceSetAttribute(preference, attribute, value, size);
    }
    cublasLtMatmulHeuristicResult_t result{};
    int num_results = 0;
    if (status == CUBLAS_STATUS_SUCCESS) {
      status = cublasLtMatmulAlgoGetHeuristic(handle_, fresh->op, fresh->weight_layout, fresh->x_layout,
                                              fresh->y_layout, fresh->y_layout, preference, 1, &result, &num_results);
    }
    cublasLtMatmulPreferenceDestroy(preference);
    if (status != CUBLAS_STATUS_SUCCESS) return cublas_failure("cublasLtMatmulAlgoGetHeuristic", shape(), status);
    if (num_results == 0 || result.state != CUBLAS_STATUS_SUCCESS) {
      return cublas_failure("cublasLtMatmulAlgoGetHeuristic (no algorithm)", shape(),
                            num_results == 0 ? CUBLAS_STATUS_NOT_SUPPORTED : result.state);
    }
    fresh->algo = result.algo;
    plan = plans_->insert(key, std::move(fresh));
  } else if (has_bias) {
    const cublasStatus_t status =
        cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias));
    if (status != CUBLAS_STATUS_SUCCESS) return cublas_failure("cublasLtMatmulDescSetAttribute", shape(), status);
  }

  const float alpha = 1.0f;
  const float beta = 0.0f;  // y is not read (it may hold poison)
  const cublasStatus_t status =
      cublasLtMatmul(handle_, plan->op, &alpha, weight, plan->weight_layout, x, plan->x_layout, &beta, y,
                     plan->y_layout, y, plan->y_layout, &plan->algo, workspace_, workspace_bytes_, stream);
  if (status != CUBLAS_STATUS_SUCCESS) return cublas_failure("cublasLtMatmul", shape(), status);
  return {};
}

}  // namespace strata::cuda
