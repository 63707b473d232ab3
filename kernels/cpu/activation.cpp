// Pointwise activations on the CPU (see kernels/activation.h).
#include "kernels/activation.h"

#include <cmath>

namespace dscope::kernels::cpu {

// Below this many elements a parallel region costs more than it saves.
constexpr std::int64_t kParallelThreshold = 16384;

void relu_forward(std::int64_t n, const float* x, float* y) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (std::int64_t i = 0; i < n; ++i)
    y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_backward(std::int64_t n, const float* grad_y, const float* y, float* grad_x) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (std::int64_t i = 0; i < n; ++i)
    grad_x[i] = y[i] > 0.0f ? grad_y[i] : 0.0f;
}

void add_relu_forward(std::int64_t n, const float* a, const float* b, float* y) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (std::int64_t i = 0; i < n; ++i) {
    const float sum = a[i] + b[i];
    y[i] = sum > 0.0f ? sum : 0.0f;
  }
}

void sigmoid_forward(std::int64_t n, const float* x, float* y) {
  // Written so that exp never overflows: for x < 0 use e^x / (1 + e^x).
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (std::int64_t i = 0; i < n; ++i) {
    if (x[i] >= 0.0f) {
      y[i] = 1.0f / (1.0f + std::exp(-x[i]));
    } else {
      const float e = std::exp(x[i]);
      y[i] = e / (1.0f + e);
    }
  }
}

void sigmoid_backward(std::int64_t n, const float* grad_y, const float* y, float* grad_x) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (std::int64_t i = 0; i < n; ++i)
    grad_x[i] = grad_y[i] * y[i] * (1.0f - y[i]);
}

}  // namespace dscope::kernels::cpu
