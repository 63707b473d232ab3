// The dropout mask on the GPU: see kernels/dropout.h. Each thread draws its own element's number with the
// same counter-based generator as the CPU (dropout_uniform), so both devices make the same mask.
#include "kernels/cuda/launch.cuh"
#include "kernels/dropout.h"

namespace dscope::kernels::cuda {
namespace {

__global__ void dropout_mask_kernel(std::int64_t n, float p, float keep_scale, std::uint64_t seed,
                                    float* mask) {
  DSCOPE_GRID_STRIDE_LOOP(i, n) {
    mask[i] = dropout_uniform(seed, i) < p ? 0.0f : keep_scale;
  }
}

}  // namespace

void dropout_mask(std::int64_t n, float p, std::uint64_t seed, float* mask) {
  if (n == 0) return;
  dropout_mask_kernel<<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(n, p, 1.0f / (1.0f - p), seed,
                                                                                mask);
  check_launch("dropout_mask");
}

}  // namespace dscope::kernels::cuda
