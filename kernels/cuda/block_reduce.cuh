// Sums across the threads of a block: each warp adds with shuffles, then warp 0 adds the warps' results.
// Included only by .cu files. Every thread of the block must call it (it synchronises).
#pragma once

#include <cuda_runtime.h>

namespace dscope::kernels::cuda {

template <typename T>
__device__ T warp_sum(T value) {
  for (int offset = 16; offset > 0; offset /= 2)
    value += __shfl_down_sync(0xffffffffu, value, offset);
  return value;
}

// The sum over the block of every thread's `value`, valid in thread 0. blockDim.x must be a multiple of 32
// and at most 1024.
template <typename T>
__device__ T block_sum(T value) {
  __shared__ T partial[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  value = warp_sum(value);
  __syncthreads();  // a previous call's readers of `partial` are done
  if (lane == 0) partial[warp] = value;
  __syncthreads();
  const int warps = static_cast<int>(blockDim.x) / 32;
  value = threadIdx.x < warps ? partial[lane] : T(0);
  if (warp == 0) value = warp_sum(value);
  return value;
}

}  // namespace dscope::kernels::cuda
