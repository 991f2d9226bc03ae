// Fused RoPE + KV-cache write: one block per token builds the token's cos/sin table, rotates
// its q and k heads in place, and stores the rotated k and the v of the token into its cache
// slot; 16-byte vectors where heads are aligned.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/rope.cuh"
#include "kernels/cuda/rope_kv.h"

namespace strata::cuda {
namespace {

// q: [num_tokens, num_q_heads, head_dim], k, v: [num_tokens, num_kv_heads, head_dim] (token
// rows *_stride apart); k_cache, v_cache: [num_slots, num_kv_heads, head_dim]. Dynamic shared
// memory: 2 * (head_dim / 2) floats. A block's steps are the (head, N-element) rotations of
// its q and k heads, then the N-element copies of its v row. N > 1 needs (head_dim / 2) % N
// == 0, strides % N == 0 and 16-byte aligned q, k, v and caches. A programmatic dependent
// (common.cuh): the first token's table and slot come from step inputs before the wait.
template <class T, int N>
__global__ void rope_and_write_kv_kernel(T* q, int64_t q_stride, int num_q_heads, T* k, int64_t k_stride, const T* v,
                                         int64_t v_stride, int num_kv_heads, const int32_t* __restrict__ positions,
                                         const int64_t* __restrict__ slot_mapping, int num_tokens, int head_dim,
                                         const float* __restrict__ inv_freq, T* __restrict__ k_cache,
                                         T* __restrict__ v_cache, int64_t num_slots) {
  extern __shared__ float cos_sin[];
  const int half = head_dim / 2;
  float* cos_table = cos_sin;
  float* sin_table = cos_sin + half;
  const int steps_per_head = half / N;
  const int rotate_steps = (num_q_heads + num_kv_heads) * steps_per_head;
  const int slot_elems = num_kv_heads * head_dim;
  const int num_steps = rotate_steps + slot_elems / N;
  launch_dependent_grids();
  const int first = blockIdx.x;
  int64_t slot = -1;
  if (first < num_tokens) {
    rope_fill_table<T>(cos_table, sin_table, static_cast<float>(positions[first]), inv_freq, half);
    slot = slot_mapping[first];
  }
  wait_for_prior_grid();
  for (int t = first; t < num_tokens; t += gridDim.x) {
    if (t != first) {
      rope_fill_table<T>(cos_table, sin_table, static_cast<float>(positions[t]), inv_freq, half);
      slot = slot_mapping[t];
    }
    __syncthreads();
    const bool cached = slot >= 0 && slot < num_slots;
    const int64_t slot_offset = cached ? slot * slot_elems : 0;
    T* k_slot = k_cache + slot_offset;
    T* v_slot = v_cache + slot_offset;
    for (int step = threadIdx.x; step < num_steps; step += blockDim.x) {
      if (step < rotate_steps) {
        const int head = step / steps_per_head;
        const int i = (step - head * steps_per_head) * N;
        const bool is_q = head < num_q_heads;
        const int64_t head_offset = static_cast<int64_t>(is_q ? head : head - num_q_heads) * head_dim;
        T* x = is_q ? q + t * q_stride + head_offset : k + t * k_stride + head_offset;
        Vec<T, N> x1 = load_vec<N>(x + i);
        Vec<T, N> x2 = load_vec<N>(x + half + i);
        rope_rotate<T, N>(x1, x2, cos_table, sin_table, i);
        store_vec<N>(x + i, x1);
        store_vec<N>(x + half + i, x2);
        if (!is_q && cached) {
          store_vec<N>(k_slot + head_offset + i, x1);
          store_vec<N>(k_slot + head_offset + half + i, x2);
        }
      } else if (cached) {
        const int e = (step - rotate_steps) * N;
        store_vec<N>(v_slot + e, load_vec<N>(v + t * v_stride + e));
      }
    }
    __syncthreads();  // the next token overwrites the table
  }
}

}  // namespace

LaunchStatus rope_and_write_kv(void* q, int64_t q_stride, int num_q_heads, void* k, int64_t k_stride, const void* v,
                               int64_t v_stride, int num_kv_heads, const int32_t* positions,
                               const int64_t* slot_mapping, int num_tokens, int head_dim, const float* inv_freq,
                               void* k_cache, void* v_cache, int64_t num_slots, DType dtype, cudaStream_t stream) {
  constexpr const char* kKernel = "rope_and_write_kv_kernel";
  const ShapeArgs shape = {{"num_tokens", num_tokens}, {"num_q_heads", num_q_heads}, {"num_kv_heads", num_kv_heads},
                           {"head_dim", head_dim},     {"q_stride", q_stride},       {"k_stride", k_stride},
                           {"v_stride", v_stride},     {"num_slots", num_slots}};
  if (num_tokens < 0 || num_q_heads < 0 || num_kv_heads <= 0 || num_slots < 0) {
    return invalid_argument(kKernel, dtype, shape, "need num_tokens, num_q_heads, num_slots >= 0 and num_kv_heads > 0");
  }
  if (head_dim <= 0 || head_dim % 2 != 0) return invalid_argument(kKernel, dtype, shape, "head_dim must be even");
  const int64_t slot_elems = static_cast<int64_t>(num_kv_heads) * head_dim;
  if (slot_elems + static_cast<int64_t>(num_q_heads) * head_dim > (int64_t{1} << 30)) {
    return invalid_argument(kKernel, dtype, shape, "token too large");
  }
  if (num_tokens == 0) return {};
  return dispatch_dtype(dtype, [&](auto tag) -> LaunchStatus {
    using T = typename decltype(tag)::type;
    constexpr int kN = kVecWidth<T>;
    T* q_t = static_cast<T*>(q);
    T* k_t = static_cast<T*>(k);
    const T* v_t = static_cast<const T*>(v);
    T* kc_t = static_cast<T*>(k_cache);
    T* vc_t = static_cast<T*>(v_cache);
    const int half = head_dim / 2;
    const bool vectorized = half % kN == 0 && q_stride % kN == 0 && k_stride % kN == 0 && v_stride % kN == 0 &&
                            (num_q_heads == 0 || is_aligned_16(q_t)) && is_aligned_16(k_t) && is_aligned_16(v_t) &&
                            is_aligned_16(kc_t) && is_aligned_16(vc_t);
    const int n = vectorized ? kN : 1;
    const int64_t steps = static_cast<int64_t>(num_q_heads + num_kv_heads) * (half / n) + slot_elems / n;
    const dim3 grid(grid_for(num_tokens));
    const dim3 block(threads_for(steps, 256));
    const size_t shared_bytes = 2 * static_cast<size_t>(half) * sizeof(float);
    if (vectorized) {
      (void)launch_pdl(rope_and_write_kv_kernel<T, kN>, grid, block, shared_bytes, stream, q_t, q_stride, num_q_heads,
                       k_t, k_stride, v_t, v_stride, num_kv_heads, positions, slot_mapping, num_tokens, head_dim,
                       inv_freq, kc_t, vc_t, num_slots);
    } else {
      (void)launch_pdl(rope_and_write_kv_kernel<T, 1>, grid, block, shared_bytes, stream, q_t, q_stride, num_q_heads,
                       k_t, k_stride, v_t, v_stride, num_kv_heads, positions, slot_mapping, num_tokens, head_dim,
                       inv_freq, kc_t, vc_t, num_slots);
    }
    return check_launch(kKernel, dtype, shape);
  });
}

}  // namespace strata::cuda
