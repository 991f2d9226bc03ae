// Rotary position embedding kernels (CPU reference).
#include "kernels/cpu/rope.h"

#include <cmath>
#include <numbers>
#include <vector>

namespace strata::cpu {
namespace {

inline void rotate_heads(float* x, int num_heads, int head_dim, const float* cos_table, const float* sin_table) {
  const int half = head_dim / 2;
  for (int h = 0; h < num_heads; ++h) {
    float* x1 = x + static_cast<int64_t>(h) * head_dim;
    float* x2 = x1 + half;
#pragma omp simd
    for (int i = 0; i < half; ++i) {
      const float a = x1[i];
      const float b = x2[i];
      x1[i] = a * cos_table[i] - b * sin_table[i];
      x2[i] = b * cos_table[i] + a * sin_table[i];
    }
  }
}

}  // namespace

void rope_inv_freq(int head_dim, float theta, float* inv_freq) {
  // fp32 throughout, as HF: 1.0 / (base ** (arange(0, dim, 2).float() / dim)).
  for (int i = 0; i < head_dim / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    inv_freq[i] = 1.0f / std::pow(theta, exponent);
  }
}

void rope_llama3_scale(float* inv_freq, int num_freqs, float factor, float low_freq_factor, float high_freq_factor,
                       int original_max_position_embeddings) {
  const float orig = static_cast<float>(original_max_position_embeddings);
  const float low_freq_wavelen = orig / low_freq_factor;
  const float high_freq_wavelen = orig / high_freq_factor;
  const float two_pi = 2.0f * std::numbers::pi_v<float>;
  for (int i = 0; i < num_freqs; ++i) {
    const float freq = inv_freq[i];
    const float wavelen = two_pi / freq;
    if (wavelen < high_freq_wavelen) continue;
    if (wavelen > low_freq_wavelen) {
      inv_freq[i] = freq / factor;
      continue;
    }
    const float smooth = (orig / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
    inv_freq[i] = (1.0f - smooth) * freq / factor + smooth * freq;
  }
}

void rope_neox(float* q, int64_t q_stride, int num_q_heads, float* k, int64_t k_stride, int num_k_heads,
               const int32_t* positions, int num_tokens, int head_dim, const float* inv_freq) {
  const int half = head_dim / 2;
  const bool parallel = static_cast<int64_t>(num_tokens) * (num_q_heads + num_k_heads) * head_dim > (1 << 16);
#pragma omp parallel if (parallel)
  {
    // cos/sin of one token, shared by all its heads.
    std::vector<float> cos_sin(2 * static_cast<size_t>(half));
    float* cos_table = cos_sin.data();
    float* sin_table = cos_table + half;
#pragma omp for schedule(static)
    for (int t = 0; t < num_tokens; ++t) {
      const float pos = static_cast<float>(positions[t]);
      for (int i = 0; i < half; ++i) {
        const float angle = pos * inv_freq[i];
        cos_table[i] = std::cos(angle);
        sin_table[i] = std::sin(angle);
      }
      rotate_heads(q + t * q_stride, num_q_heads, head_dim, cos_table, sin_table);
      if (k != nullptr) rotate_heads(k + t * k_stride, num_k_heads, head_dim, cos_table, sin_table);
    }
  }
}

}  // namespace strata::cpu
