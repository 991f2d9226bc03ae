// Linear layer (CPU reference): y = x W^T (+ bias) through one BLAS sgemm.
#pragma once

namespace strata::cpu {

// x:      [num_rows, in_features]
// weight: [out_features, in_features] (row-major, as stored in HF checkpoints)
// bias:   [out_features] or nullptr
// y:      [num_rows, out_features] (must not alias x)
void linear(const float* x, const float* weight, const float* bias, float* y, int num_rows, int in_features,
            int out_features);

}  // namespace strata::cpu
