// Log-softmax along the middle axis of a dense [outer, extent, inner] block: any axis of a row-major tensor
// is one, with outer the product of the axes before it and inner the product of those after it. The
// geometry is the one the sum reduction uses (kernels/reduce.h), since both reduce over that axis.
//
// Forward, per line of `extent` values: y = x − m − log Σ exp(x − m) with m the line's maximum, so no
// exp overflows and the largest term is exactly exp(0) = 1. Backward uses the saved output only:
// grad_x = grad_y − softmax · Σ grad_y, with softmax = exp(y).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/reduce.h"

namespace dscope::kernels {

namespace reference {
// x, y [outer, extent, inner]; writes y. y may not alias x.
template <typename T>
void log_softmax_forward(const ReduceGeometry& g, const T* x, T* y) {
  for (std::int64_t o = 0; o < g.outer; ++o)
    for (std::int64_t i = 0; i < g.inner; ++i) {
      const std::int64_t first = o * g.extent * g.inner + i;
      T maximum = -std::numeric_limits<T>::infinity();
      for (std::int64_t e = 0; e < g.extent; ++e)
        maximum = std::fmax(maximum, x[first + e * g.inner]);
      T total = 0;
      for (std::int64_t e = 0; e < g.extent; ++e)
        total += std::exp(x[first + e * g.inner] - maximum);
      const T log_sum_exp = maximum + std::log(total);
      for (std::int64_t e = 0; e < g.extent; ++e)
        y[first + e * g.inner] = x[first + e * g.inner] - log_sum_exp;
    }
}

// grad_y, y, grad_x [outer, extent, inner]; writes grad_x.
template <typename T>
void log_softmax_backward(const ReduceGeometry& g, const T* grad_y, const T* y, T* grad_x) {
  for (std::int64_t o = 0; o < g.outer; ++o)
    for (std::int64_t i = 0; i < g.inner; ++i) {
      const std::int64_t first = o * g.extent * g.inner + i;
      T total = 0;
      for (std::int64_t e = 0; e < g.extent; ++e)
        total += grad_y[first + e * g.inner];
      for (std::int64_t e = 0; e < g.extent; ++e) {
        const std::int64_t at = first + e * g.inner;
        grad_x[at] = grad_y[at] - std::exp(y[at]) * total;
      }
    }
}
}  // namespace reference

namespace cpu {
// Same contracts as the reference; sums of exponentials and of gradients accumulate in double.
void log_softmax_forward(const ReduceGeometry& g, const float* x, float* y);
void log_softmax_backward(const ReduceGeometry& g, const float* grad_y, const float* y, float* grad_x);
}  // namespace cpu

namespace cuda {
// Same contracts, on device pointers; one thread per line.
void log_softmax_forward(const ReduceGeometry& g, const float* x, float* y);
void log_softmax_backward(const ReduceGeometry& g, const float* grad_y, const float* y, float* grad_x);
}  // namespace cuda

}  // namespace dscope::kernels
