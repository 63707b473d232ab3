// The dropout mask on the CPU (see kernels/dropout.h).
#include "kernels/dropout.h"

namespace dscope::kernels::cpu {
namespace {
// Below this many elements a parallel region costs more than it saves.
constexpr std::int64_t kParallelThreshold = 16384;
}  // namespace

void dropout_mask(std::int64_t n, float p, std::uint64_t seed, float* mask) {
  const float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (std::int64_t i = 0; i < n; ++i)
    mask[i] = dropout_uniform(seed, i) < p ? 0.0f : scale;
}

}  // namespace dscope::kernels::cpu
