// Embedding lookup kernel: one block per token copies its row in 16-byte vectors; launched as
// a programmatic dependent (common.cuh) that releases the next kernel at once.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/embedding.h"

namespace strata::cuda {
namespace {

// token_ids: [num_tokens], embedding: [vocab_size, hidden_size], out: [num_tokens, hidden_size].
// N elements per load; N > 1 needs hidden_size % N == 0 and 16-byte aligned tables.
template <class T, int N>
__global__ void embedding_lookup_kernel(const int32_t* __restrict__ token_ids, int num_tokens,
                                        const T* __restrict__ embedding, int vocab_size, int hidden_size,
                                        T* __restrict__ out) {
  launch_dependent_grids();
  wait_for_prior_grid();
  for (int t = blockIdx.x; t < num_tokens; t += gridDim.x) {
    const int32_t id = token_ids[t];
    const bool valid = id >= 0 && id < vocab_size;
    const T* src = embedding + static_cast<int64_t>(valid ? id : 0) * hidden_size;
    T* dst = out + static_cast<int64_t>(t) * hidden_size;
    for (int i = threadIdx.x * N; i < hidden_size; i += blockDim.x * N) {
      Vec<T, N> v;
      if (valid) {
        v = load_vec<N>(src + i);
      } else {
#pragma unroll
        for (int j = 0; j < N; ++j) v.v[j] = T(0);
      }
      store_vec<N>(dst + i, v);
    }
  }
}

}  // namespace

LaunchStatus embedding_lookup(const int32_t* token_ids, int num_tokens, const void* embedding, int vocab_size,
                              int hidden_size, void* out, DType dtype, cudaStream_t stream) {
  constexpr const char* kKernel = "embedding_lookup_kernel";
  const ShapeArgs shape = {{"num_tokens", num_tokens}, {"vocab_size", vocab_size}, {"hidden_size", hidden_size}};
  if (num_tokens < 0 || vocab_size < 0 || hidden_size <= 0) {
    return invalid_argument(kKernel, dtype, shape, "sizes must be non-negative and hidden_size > 0");
  }
  if (num_tokens == 0) return {};
  // A bitwise copy: bf16 and fp16 share the 2-byte instance.
  auto launch = [&](auto tag) -> LaunchStatus {
    using T = typename decltype(tag)::type;
    constexpr int kN = kVecWidth<T>;
    const T* table = static_cast<const T*>(embedding);
    T* dst = static_cast<T*>(out);
    const bool vectorized = hidden_size % kN == 0 && is_aligned_16(table) && is_aligned_16(dst);
    const dim3 grid(grid_for(num_tokens));
    if (vectorized) {
      (void)launch_pdl(embedding_lookup_kernel<T, kN>, grid, threads_for(hidden_size / kN, 256), 0, stream, token_ids,
                       num_tokens, table, vocab_size, hidden_size, dst);
    } else {
      (void)launch_pdl(embedding_lookup_kernel<T, 1>, grid, threads_for(hidden_size, 256), 0, stream, token_ids,
                       num_tokens, table, vocab_size, hidden_size, dst);
    }
    return check_launch(kKernel, dtype, shape);
  };
  return dtype_size(dtype) == 4 ? launch(TypeTag<float>{}) : launch(TypeTag<uint16_t>{});
}

}  // namespace strata::cuda
