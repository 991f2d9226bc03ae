// KV-cache write kernel: one block per token copies its K and V rows into the token's slot,
// 16-byte vectors where rows are aligned. Slots not in slot_mapping are never touched.
// Launched as a programmatic dependent (common.cuh) that releases the next kernel at once.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kv_cache.h"

namespace strata::cuda {
namespace {

// key, value: [num_tokens, num_kv_heads, head_dim] (rows key_stride / value_stride apart);
// slot_mapping: [num_tokens]; k_cache, v_cache: [num_slots, num_kv_heads, head_dim].
// N > 1 needs slot_elems % N == 0, strides % N == 0 and 16-byte aligned pointers.
template <class T, int N>
__global__ void write_kv_cache_kernel(const T* __restrict__ key, int64_t key_stride, const T* __restrict__ value,
                                      int64_t value_stride, const int64_t* __restrict__ slot_mapping, int num_tokens,
                                      int slot_elems, T* __restrict__ k_cache, T* __restrict__ v_cache,
                                      int64_t num_slots) {
  launch_dependent_grids();
  wait_for_prior_grid();
  for (int t = blockIdx.x; t < num_tokens; t += gridDim.x) {
    const int64_t slot = slot_mapping[t];
    if (slot < 0 || slot >= num_slots) continue;
    const T* k_src = key + t * key_stride;
    const T* v_src = value + t * value_stride;
    T* k_dst = k_cache + slot * slot_elems;
    T* v_dst = v_cache + slot * slot_elems;
    for (int i = threadIdx.x * N; i < slot_elems; i += blockDim.x * N) {
      store_vec<N>(k_dst + i, load_vec<N>(k_src + i));
      store_vec<N>(v_dst + i, load_vec<N>(v_src + i));
    }
  }
}

}  // namespace

LaunchStatus write_kv_cache(const void* key, int64_t key_stride, const void* value, int64_t value_stride,
                            const int64_t* slot_mapping, int num_tokens, int num_kv_heads, int head_dim, void* k_cache,
                            void* v_cache, int64_t num_slots, DType dtype, cudaStream_t stream) {
  constexpr const char* kKernel = "write_kv_cache_kernel";
  const ShapeArgs shape = {{"num_tokens", num_tokens}, {"num_kv_heads", num_kv_heads}, {"head_dim", head_dim},
                           {"key_stride", key_stride}, {"value_stride", value_stride}, {"num_slots", num_slots}};
  if (num_tokens < 0 || num_kv_heads <= 0 || head_dim <= 0 || num_slots < 0) {
    return invalid_argument(kKernel, dtype, shape, "need num_tokens, num_slots >= 0 and num_kv_heads, head_dim > 0");
  }
  const int64_t slot_elems = static_cast<int64_t>(num_kv_heads) * head_dim;
  if (slot_elems > (int64_t{1} << 30)) return invalid_argument(kKernel, dtype, shape, "slot too large");
  if (num_tokens == 0) return {};
  // A bitwise copy: bf16 and fp16 share the 2-byte instance.
  auto launch = [&](auto tag) -> LaunchStatus {
    using T = typename decltype(tag)::type;
    constexpr int kN = kVecWidth<T>;
    const T* k_t = static_cast<const T*>(key);
    const T* v_t = static_cast<const T*>(value);
    T* kc_t = static_cast<T*>(k_cache);
    T* vc_t = static_cast<T*>(v_cache);
    const bool vectorized = slot_elems % kN == 0 && key_stride % kN == 0 && value_stride % kN == 0 &&
                            is_aligned_16(k_t) && is_aligned_16(v_t) && is_aligned_16(kc_t) && is_aligned_16(vc_t);
    const int elems = static_cast<int>(slot_elems);
    const dim3 grid(grid_for(num_tokens));
    if (vectorized) {
      (void)launch_pdl(write_kv_cache_kernel<T, kN>, grid, threads_for(elems / kN, 256), 0, stream, k_t, key_stride,
                       v_t, value_stride, slot_mapping, num_tokens, elems, kc_t, vc_t, num_slots);
    } else {
      (void)launch_pdl(write_kv_cache_kernel<T, 1>, grid, threads_for(elems, 256), 0, stream, k_t, key_stride, v_t,
                       value_stride, slot_mapping, num_tokens, elems, kc_t, vc_t, num_slots);
    }
    return check_launch(kKernel, dtype, shape);
  };
  return dtype_size(dtype) == 4 ? launch(TypeTag<float>{}) : launch(TypeTag<uint16_t>{});
}

}  // namespace strata::cuda
