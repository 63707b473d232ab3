// Strided copy and fill on the GPU: see kernels/copy.h. One thread per element of the shape: its index is
// decomposed into coordinates once and read back through both sets of strides.
#include "kernels/copy.h"
#include "kernels/cuda/launch.cuh"

namespace dscope::kernels::cuda {
namespace {

template <typename T>
__global__ void copy_kernel(CopyGeometry g, std::int64_t n, const T* src, T* dst) {
  DSCOPE_GRID_STRIDE_LOOP(i, n) {
    std::int64_t rest = i, src_at = 0, dst_at = 0;
    for (int axis = g.rank - 1; axis >= 0; --axis) {
      const std::int64_t index = rest % g.shape[axis];
      rest /= g.shape[axis];
      src_at += index * g.src_strides[axis];
      dst_at += index * g.dst_strides[axis];
    }
    dst[dst_at] = src[src_at];
  }
}

template <typename T>
__global__ void fill_kernel(std::int64_t n, T value, T* dst) {
  DSCOPE_GRID_STRIDE_LOOP(i, n) {
    dst[i] = value;
  }
}

}  // namespace

template <typename T>
void copy(const CopyGeometry& g, const T* src, T* dst) {
  std::int64_t n = 1;
  for (int axis = 0; axis < g.rank; ++axis)
    n *= g.shape[axis];
  if (n == 0) return;
  copy_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(g, n, src, dst);
  check_launch("copy");
}

template <typename T>
void fill(std::int64_t n, T value, T* dst) {
  if (n == 0) return;
  fill_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(n, value, dst);
  check_launch("fill");
}

template void copy<float>(const CopyGeometry&, const float*, float*);
template void copy<std::int64_t>(const CopyGeometry&, const std::int64_t*, std::int64_t*);
template void fill<float>(std::int64_t, float, float*);
template void fill<std::int64_t>(std::int64_t, std::int64_t, std::int64_t*);
template void copy<BFloat16>(const CopyGeometry&, const BFloat16*, BFloat16*);
template void fill<BFloat16>(std::int64_t, BFloat16, BFloat16*);

}  // namespace dscope::kernels::cuda
