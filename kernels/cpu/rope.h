// Rotary position embedding (CPU reference): inverse-frequency tables and the in-place
// rotate-half (GPT-NeoX) rotation that HF Llama, Mistral and Qwen use.
#pragma once

#include <cstdint>

namespace strata::cpu {

// inv_freq: [head_dim / 2];  inv_freq[i] = 1 / theta^(2i / head_dim)  (head_dim even)
void rope_inv_freq(int head_dim, float theta, float* inv_freq);

// Llama 3.1 frequency scaling, in place on inv_freq: [num_freqs] (HF
// _compute_llama3_parameters). With wavelen = 2*pi / inv_freq:
//   wavelen < orig / high_freq_factor  -> kept
//   wavelen > orig / low_freq_factor   -> inv_freq / factor
//   otherwise smooth = (orig / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor),
//             inv_freq = (1 - smooth) * inv_freq / factor + smooth * inv_freq
void rope_llama3_scale(float* inv_freq, int num_freqs, float factor, float low_freq_factor, float high_freq_factor,
                       int original_max_position_embeddings);

// Rotates q and k in place at each token's position. Element i < head_dim/2 of a head pairs
// with element i + head_dim/2 (rotate-half layout), angle = positions[t] * inv_freq[i]:
//   x1' = x1 cos - x2 sin,  x2' = x2 cos + x1 sin
// q:         [num_tokens, num_q_heads, head_dim], token rows q_stride elements apart
// k:         [num_tokens, num_k_heads, head_dim], token rows k_stride elements apart
//            (k may be nullptr with num_k_heads 0)
// positions: [num_tokens]
// inv_freq:  [head_dim / 2]
void rope_neox(float* q, int64_t q_stride, int num_q_heads, float* k, int64_t k_stride, int num_k_heads,
               const int32_t* positions, int num_tokens, int head_dim, const float* inv_freq);

}  // namespace strata::cpu
