// Sum over the middle axis of [outer, extent, inner] on the GPU: see kernels/reduce.h.
//
// Two shapes of work. When inner > 1 (say, summing a bias gradient over the batch), neighbouring threads take
// neighbouring inner positions and each walks the extent: reads are coalesced and no thread waits on another.
// When inner = 1 (a row sum, or the whole tensor), one block reduces each row with a block-wide sum. Both
// accumulate in double, like the CPU kernel.
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/reduce.h"

namespace dscope::kernels::cuda {
namespace {

constexpr int kRowThreads = 1024;

__global__ void sum_columns_kernel(ReduceGeometry g, const float* x, float* y) {
  DSCOPE_GRID_STRIDE_LOOP(at, g.outer * g.inner) {
    const std::int64_t o = at / g.inner, i = at % g.inner;
    const float* column = x + o * g.extent * g.inner + i;
    double total = 0.0;
    for (std::int64_t e = 0; e < g.extent; ++e)
      total += column[e * g.inner];
    y[at] = static_cast<float>(total);
  }
}

__global__ void sum_rows_kernel(ReduceGeometry g, const float* x, float* y) {
  for (std::int64_t o = blockIdx.x; o < g.outer; o += gridDim.x) {
    const float* row = x + o * g.extent;
    double total = 0.0;
    for (std::int64_t e = threadIdx.x; e < g.extent; e += blockDim.x)
      total += row[e];
    total = block_sum(total);
    if (threadIdx.x == 0) y[o] = static_cast<float>(total);
  }
}

}  // namespace

void sum(const ReduceGeometry& g, const float* x, float* y) {
  if (g.outer * g.inner == 0) return;
  if (g.inner == 1 && g.extent >= 64) {
    const unsigned blocks = static_cast<unsigned>(g.outer < 65535 ? g.outer : 65535);
    sum_rows_kernel<<<blocks, kRowThreads, 0, current_stream()>>>(g, x, y);
  } else {
    sum_columns_kernel<<<blocks_for(g.outer * g.inner), kThreadsPerBlock, 0, current_stream()>>>(g, x, y);
  }
  check_launch("sum");
}

}  // namespace dscope::kernels::cuda
