// Bias-add kernel: one block per row, 16-byte vectors where rows are aligned; launched as a
// programmatic dependent (common.cuh) that releases the next kernel at once.
#include "kernels/cuda/bias_add.h"
#include "kernels/cuda/common.cuh"

namespace strata::cuda {
namespace {

// x: [num_rows, dim], bias: [dim]. N > 1 needs dim % N == 0 and 16-byte aligned x and bias.
template <class T, int N>
__global__ void bias_add_kernel(T* __restrict__ x, const T* __restrict__ bias, int num_rows, int dim) {
  launch_dependent_grids();
  wait_for_prior_grid();
  for (int row = blockIdx.x; row < num_rows; row += gridDim.x) {
    T* x_row = x + static_cast<int64_t>(row) * dim;
    for (int i = threadIdx.x * N; i < dim; i += blockDim.x * N) {
      Vec<T, N> v = load_vec<N>(x_row + i);
      const Vec<T, N> b = load_vec<N>(bias + i);
#pragma unroll
      for (int j = 0; j < N; ++j) v.v[j] = from_float<T>(to_float(v.v[j]) + to_float(b.v[j]));
      store_vec<N>(x_row + i, v);
    }
  }
}

}  // namespace

LaunchStatus bias_add(void* x, const void* bias, int num_rows, int dim, DType dtype, cudaStream_t stream) {
  constexpr const char* kKernel = "bias_add_kernel";
  const ShapeArgs shape = {{"num_rows", num_rows}, {"dim", dim}};
  if (num_rows < 0 || dim <= 0) return invalid_argument(kKernel, dtype, shape, "need num_rows >= 0 and dim > 0");
  if (num_rows == 0) return {};
  return dispatch_dtype(dtype, [&](auto tag) -> LaunchStatus {
    using T = typename decltype(tag)::type;
    constexpr int kN = kVecWidth<T>;
    T* x_t = static_cast<T*>(x);
    const T* b_t = static_cast<const T*>(bias);
    const dim3 grid(grid_for(num_rows));
    if (dim % kN == 0 && is_aligned_16(x_t) && is_aligned_16(b_t)) {
      (void)launch_pdl(bias_add_kernel<T, kN>, grid, threads_for(dim / kN, 256), 0, stream, x_t, b_t, num_rows, dim);
    } else {
      (void)launch_pdl(bias_add_kernel<T, 1>, grid, threads_for(dim, 256), 0, stream, x_t, b_t, num_rows, dim);
    }
    return check_launch(kKernel, dtype, shape);
  });
}

}  // namespace strata::cuda
