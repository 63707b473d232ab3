// Sum reduction over the middle axis of a dense [outer, extent, inner] block. Any set of axes reduces to
// a sequence of these after adjacent axes are merged (see tensor/ops/reduction.cpp).
#pragma once

#include <cstdint>

namespace dscope::kernels {

struct ReduceGeometry {
  std::int64_t outer = 1;   // product of the axes before the reduced ones
  std::int64_t extent = 1;  // product of the reduced axes
  std::int64_t inner = 1;   // product of the axes after
};

namespace reference {
// y[outer, inner] = sum over e of x[outer, e, inner], accumulated in T.
template <typename T>
void sum(const ReduceGeometry& g, const T* x, T* y) {
  for (std::int64_t o = 0; o < g.outer; ++o)
    for (std::int64_t i = 0; i < g.inner; ++i) {
      T total = 0;
      for (std::int64_t e = 0; e < g.extent; ++e)
        total += x[(o * g.extent + e) * g.inner + i];
      y[o * g.inner + i] = total;
    }
}
}  // namespace reference

namespace cpu {
// Same contract as reference::sum; accumulates in double so long sums stay accurate.
void sum(const ReduceGeometry& g, const float* x, float* y);
}  // namespace cpu

namespace cuda {
// Same contract; accumulates in double too, so CPU and GPU sums agree to float rounding.
void sum(const ReduceGeometry& g, const float* x, float* y);
}  // namespace cuda

}  // namespace dscope::kernels
