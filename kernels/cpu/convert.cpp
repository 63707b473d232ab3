// float32 ↔ bfloat16 on the CPU (see kernels/convert.h).
#include "kernels/convert.h"

#include "kernels/cpu/strided_loop.h"

namespace dscope::kernels::cpu {

void float_to_bfloat16(std::int64_t n, const float* x, BFloat16* y) {
#pragma omp parallel for schedule(static) if (n > detail::kChunk)
  for (std::int64_t i = 0; i < n; ++i)
    y[i] = to_bfloat16(x[i]);
}

void bfloat16_to_float(std::int64_t n, const BFloat16* x, float* y) {
#pragma omp parallel for schedule(static) if (n > detail::kChunk)
  for (std::int64_t i = 0; i < n; ++i)
    y[i] = to_float(x[i]);
}

std::vector<float> widened(const BFloat16* x, std::int64_t n) {
  std::vector<float> values(x != nullptr ? static_cast<std::size_t>(n) : 0);
  if (x != nullptr) bfloat16_to_float(n, x, values.data());
  return values;
}

}  // namespace dscope::kernels::cpu
