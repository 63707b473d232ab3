// Pointwise activations on the CPU (see kernels/activation.h).
#include "kernels/activation.h"

#include <cmath>

namespace dscope::kernels::cpu {

// Below this many elements a parallel region costs more than it saves.
constexpr std::int64_t kParallelThreshold = 16384;

namespace {
// One body for float and bfloat16 activations (kernels/bfloat16.h: as_float, store_float).
template <typename T>
void relu_forward_of(std::int64_t n, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (std::int64_t i = 0; i < n; ++i) {
    const float value = as_float(x[i]);
    store_float(&y[i], value > 0.0f ? value : 0.0f);
  }
}

template <typename T>
void relu_backward_of(std::int64_t n, const T* grad_y, const T* y, T* grad_x) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (std::int64_t i = 0; i < n; ++i)
    store_float(&grad_x[i], as_float(y[i]) > 0.0f ? as_float(grad_y[i]) : 0.0f);
}

template <typename T>
void add_relu_forward_of(std::int64_t n, const T* a, const T* b, T* y) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (std::int64_t i = 0; i < n; ++i) {
    const float sum = as_float(a[i]) + as_float(b[i]);
    store_float(&y[i], sum > 0.0f ? sum : 0.0f);
  }
}
}  // namespace

void relu_forward(std::int64_t n, const float* x, float* y) {
  relu_forward_of(n, x, y);
}
void relu_forward(std::int64_t n, const BFloat16* x, BFloat16* y) {
  relu_forward_of(n, x, y);
}
void relu_backward(std::int64_t n, const float* grad_y, const float* y, float* grad_x) {
  relu_backward_of(n, grad_y, y, grad_x);
}
void relu_backward(std::int64_t n, const BFloat16* grad_y, const BFloat16* y, BFloat16* grad_x) {
  relu_backward_of(n, grad_y, y, grad_x);
}
void add_relu_forward(std::int64_t n, const float* a, const float* b, float* y) {
  add_relu_forward_of(n, a, b, y);
}
void add_relu_forward(std::int64_t n, const BFloat16* a, const BFloat16* b, BFloat16* y) {
  add_relu_forward_of(n, a, b, y);
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
