// Elementwise arithmetic on the CPU (see kernels/elementwise.h). Broadcast loops go through
// detail::for_each_run; the innermost loop has a unit-stride case for each operand so it vectorises.
#include "kernels/elementwise.h"

#include <cmath>

#include "kernels/cpu/strided_loop.h"

namespace dscope::kernels::cpu {
namespace {

template <typename Op>
void broadcast_binary(const BroadcastGeometry& g, const float* a, const float* b, float* y, Op op) {
  const std::int64_t* strides[2] = {g.a_strides, g.b_strides};
  const std::int64_t a_step = g.rank ? g.a_strides[g.rank - 1] : 0;
  const std::int64_t b_step = g.rank ? g.b_strides[g.rank - 1] : 0;
  detail::for_each_run<2>(g.rank, g.shape, strides,
                          [&](const std::int64_t* offsets, std::int64_t length, std::int64_t out) {
                            const float* pa = a + offsets[0];
                            const float* pb = b + offsets[1];
                            float* py = y + out;
                            if (a_step == 1 && b_step == 1) {
                              for (std::int64_t i = 0; i < length; ++i)
                                py[i] = op(pa[i], pb[i]);
                            } else if (a_step == 1 && b_step == 0) {
                              const float vb = *pb;
                              for (std::int64_t i = 0; i < length; ++i)
                                py[i] = op(pa[i], vb);
                            } else if (a_step == 0 && b_step == 1) {
                              const float va = *pa;
                              for (std::int64_t i = 0; i < length; ++i)
                                py[i] = op(va, pb[i]);
                            } else {
                              for (std::int64_t i = 0; i < length; ++i)
                                py[i] = op(pa[i * a_step], pb[i * b_step]);
                            }
                          });
}

template <typename Op>
void dense_map(std::int64_t n, const float* x, float* y, Op op) {
#pragma omp parallel for schedule(static) if (n > detail::kChunk)
  for (std::int64_t i = 0; i < n; ++i)
    y[i] = op(x[i]);
}

}  // namespace

void add(const BroadcastGeometry& g, const float* a, const float* b, float* y) {
  broadcast_binary(g, a, b, y, [](float u, float v) { return u + v; });
}
void sub(const BroadcastGeometry& g, const float* a, const float* b, float* y) {
  broadcast_binary(g, a, b, y, [](float u, float v) { return u - v; });
}
void mul(const BroadcastGeometry& g, const float* a, const float* b, float* y) {
  broadcast_binary(g, a, b, y, [](float u, float v) { return u * v; });
}
void div(const BroadcastGeometry& g, const float* a, const float* b, float* y) {
  broadcast_binary(g, a, b, y, [](float u, float v) { return u / v; });
}

void add_scalar(std::int64_t n, const float* x, float scalar, float* y) {
  dense_map(n, x, y, [scalar](float v) { return v + scalar; });
}
void mul_scalar(std::int64_t n, const float* x, float scalar, float* y) {
  dense_map(n, x, y, [scalar](float v) { return v * scalar; });
}
void neg(std::int64_t n, const float* x, float* y) {
  dense_map(n, x, y, [](float v) { return -v; });
}
void exp(std::int64_t n, const float* x, float* y) {
  dense_map(n, x, y, [](float v) { return std::exp(v); });
}
void log(std::int64_t n, const float* x, float* y) {
  dense_map(n, x, y, [](float v) { return std::log(v); });
}

void axpy(std::int64_t n, float alpha, const float* x, float* y) {
#pragma omp parallel for schedule(static) if (n > detail::kChunk)
  for (std::int64_t i = 0; i < n; ++i)
    y[i] += alpha * x[i];
}

void axpy(std::int64_t n, float alpha, const BFloat16* x, BFloat16* y) {
#pragma omp parallel for schedule(static) if (n > detail::kChunk)
  for (std::int64_t i = 0; i < n; ++i)
    y[i] = to_bfloat16(to_float(y[i]) + alpha * to_float(x[i]));
}

}  // namespace dscope::kernels::cpu
