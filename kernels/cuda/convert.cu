// float32 ↔ bfloat16 on the GPU (see kernels/convert.h), with the same rounding code as the CPU's.
#include "kernels/convert.h"
#include "kernels/cuda/launch.cuh"

namespace dscope::kernels::cuda {
namespace {

__global__ void float_to_bfloat16_kernel(std::int64_t n, const float* x, BFloat16* y) {
  DSCOPE_GRID_STRIDE_LOOP(i, n) {
    y[i] = to_bfloat16(x[i]);
  }
}
__global__ void bfloat16_to_float_kernel(std::int64_t n, const BFloat16* x, float* y) {
  DSCOPE_GRID_STRIDE_LOOP(i, n) {
    y[i] = to_float(x[i]);
  }
}

}  // namespace

void float_to_bfloat16(std::int64_t n, const float* x, BFloat16* y) {
  if (n == 0) return;
  float_to_bfloat16_kernel<<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(n, x, y);
  check_launch("float_to_bfloat16");
}

void bfloat16_to_float(std::int64_t n, const BFloat16* x, float* y) {
  if (n == 0) return;
  bfloat16_to_float_kernel<<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(n, x, y);
  check_launch("bfloat16_to_float");
}

}  // namespace dscope::kernels::cuda
