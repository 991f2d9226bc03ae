// Paged attention (CPU reference). One task per (token, query head); each runs an exact
// two-pass softmax in fp32 over its visible cache slots, walking the block table block by block.
#include "kernels/cpu/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace strata::cpu {
namespace {

inline float dot(const float* a, const float* b, int n) {
  float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
  for (int i = 0; i < n; ++i) acc += a[i] * b[i];
  return acc;
}

inline void axpy(float alpha, const float* x, float* y, int n) {
#pragma omp simd
  for (int i = 0; i < n; ++i) y[i] += alpha * x[i];
}

}  // namespace

void paged_attention(float* out, const float* q, int64_t q_stride, const float* k_cache, const float* v_cache,
                     const int32_t* block_tables, int max_blocks_per_seq, const int32_t* query_start,
                     const int32_t* context_lens, int num_seqs, int num_heads, int num_kv_heads, int head_dim,
                     int block_size, float scale, int sliding_window) {
  if (num_seqs <= 0) return;
  const int num_tokens = query_start[num_seqs];
  if (num_tokens <= 0) return;
  const int group_size = num_heads / num_kv_heads;
  const int64_t slot_stride = static_cast<int64_t>(num_kv_heads) * head_dim;
  const int64_t block_stride = slot_stride * block_size;
  int max_context = 0;
  for (int s = 0; s < num_seqs; ++s) max_context = std::max(max_context, context_lens[s]);
  const int64_t num_tasks = static_cast<int64_t>(num_tokens) * num_heads;

  // Small batches (a few decodes) finish faster than a parallel region starts.
  const bool parallel = num_tasks > 1 && static_cast<int64_t>(max_context) * head_dim * num_tasks > (1 << 17);
#pragma omp parallel if (parallel)
  {
    std::vector<float> scores(static_cast<size_t>(std::max(max_context, 1)));
#pragma omp for schedule(dynamic, 4)
    for (int64_t task = 0; task < num_tasks; ++task) {
      const int t = static_cast<int>(task / num_heads);
      const int h = static_cast<int>(task % num_heads);
      const int s = static_cast<int>(std::upper_bound(query_start, query_start + num_seqs + 1, t) - query_start) - 1;
      const int n_new = query_start[s + 1] - query_start[s];
      const int pos = context_lens[s] - n_new + (t - query_start[s]);
      const int lo = sliding_window > 0 ? std::max(0, pos - sliding_window + 1) : 0;
      const int32_t* block_table = block_tables + static_cast<int64_t>(s) * max_blocks_per_seq;
      const int64_t head_offset = static_cast<int64_t>(h / group_size) * head_dim;
      const float* q_head = q + t * q_stride + static_cast<int64_t>(h) * head_dim;
      float* out_head = out + task * head_dim;

      // Pass 1: scaled scores q.k for slots [lo, pos] and their maximum.
      float max_score = -std::numeric_limits<float>::infinity();
      for (int slot = lo; slot <= pos;) {
        const int b = slot / block_size;
        const int end = std::min(pos + 1, (b + 1) * block_size);
        const float* k_block = k_cache + block_table[b] * block_stride + head_offset;
        for (; slot < end; ++slot) {
          const float score = dot(q_head, k_block + (slot - b * block_size) * slot_stride, head_dim) * scale;
          scores[slot - lo] = score;
          max_score = std::max(max_score, score);
        }
      }
      // Pass 2: exponentiate and sum.
      const int num_visible = pos - lo + 1;
      float sum = 0.0f;
      for (int i = 0; i < num_visible; ++i) {
        scores[i] = std::exp(scores[i] - max_score);
        sum += scores[i];
      }
      // Pass 3: probability-weighted sum of V.
      std::memset(out_head, 0, static_cast<size_t>(head_dim) * sizeof(float));
      for (int slot = lo; slot <= pos;) {
        const int b = slot / block_size;
        const int end = std::min(pos + 1, (b + 1) * block_size);
        const float* v_block = v_cache + block_table[b] * block_stride + head_offset;
        for (; slot < end; ++slot) {
          axpy(scores[slot - lo], v_block + (slot - b * block_size) * slot_stride, out_head, head_dim);
        }
      }
      const float inv_sum = 1.0f / sum;
#pragma omp simd
      for (int i = 0; i < head_dim; ++i) out_head[i] *= inv_sum;
    }
  }
}

}  // namespace strata::cpu
