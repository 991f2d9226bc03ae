// Gated activations (CPU reference): SwiGLU, silu(gate) * up, as in the Llama MLP.
#pragma once

#include <cstdint>

namespace strata::cpu {

// gate_up: [num_tokens, 2 * dim], each row [gate | up]
// out:     [num_tokens, dim];  out = silu(gate) * up, silu(x) = x / (1 + exp(-x))
void silu_and_mul(const float* gate_up, float* out, int num_tokens, int dim);

// gate, up, out: [n] (out may alias gate or up)
void silu_mul(const float* gate, const float* up, float* out, int64_t n);

}  // namespace strata::cpu
