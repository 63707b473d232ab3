// Max and average pooling on the CPU (see kernels/pool2d.h).
//
// One OpenMP task per (n, c) plane: planes are independent, and a backward that scatters into its own plane
// (overlapping windows add into the same input position) needs no atomics. Windows are small (2×2, 3×3), so
// the loops are the reference's with the plane pointers hoisted; pooling is a small share of a ResNet step.
#include "kernels/pool2d.h"

namespace dscope::kernels::cpu {
namespace {

// Below this much work (window reads) a parallel region costs more than it saves.
constexpr std::int64_t kParallelThreshold = 16384;

std::int64_t window_reads(const Pool2dGeometry& g) {
  return g.N * g.C * g.P * g.Q * g.kernel_h * g.kernel_w;
}

}  // namespace

void max_pool2d_forward(const Pool2dGeometry& g, const float* x, float* y, std::int64_t* argmax) {
#pragma omp parallel for schedule(static) if (window_reads(g) > kParallelThreshold)
  for (std::int64_t plane = 0; plane < g.N * g.C; ++plane) {
    const float* in = x + plane * g.H * g.W;
    float* out = y + plane * g.P * g.Q;
    std::int64_t* out_index = argmax ? argmax + plane * g.P * g.Q : nullptr;
    for (std::int64_t p = 0; p < g.P; ++p) {
      const PoolWindow rows = pool_window(p, g.stride_h, g.pad_h, g.kernel_h, g.H);
      for (std::int64_t q = 0; q < g.Q; ++q) {
        const PoolWindow cols = pool_window(q, g.stride_w, g.pad_w, g.kernel_w, g.W);
        float best = -std::numeric_limits<float>::infinity();
        std::int64_t best_index = rows.begin * g.W + cols.begin;
        for (std::int64_t h = rows.begin; h < rows.end; ++h)
          for (std::int64_t w = cols.begin; w < cols.end; ++w)
            if (replaces_maximum(in[h * g.W + w], best)) {
              best = in[h * g.W + w];
              best_index = h * g.W + w;
            }
        out[p * g.Q + q] = best;
        if (out_index) out_index[p * g.Q + q] = best_index;
      }
    }
  }
}

void max_pool2d_backward(const Pool2dGeometry& g, const float* grad_y, const std::int64_t* argmax,
                         float* grad_x) {
#pragma omp parallel for schedule(static) if (g.N * g.C * (g.H * g.W + g.P * g.Q) > kParallelThreshold)
  for (std::int64_t plane = 0; plane < g.N * g.C; ++plane) {
    float* out = grad_x + plane * g.H * g.W;
    const float* grad = grad_y + plane * g.P * g.Q;
    const std::int64_t* index = argmax + plane * g.P * g.Q;
    for (std::int64_t i = 0; i < g.H * g.W; ++i)
      out[i] = 0.0f;
    for (std::int64_t pq = 0; pq < g.P * g.Q; ++pq)
      out[index[pq]] += grad[pq];
  }
}

void avg_pool2d_forward(const Pool2dGeometry& g, const float* x, float* y) {
  const float inverse_divisor = 1.0f / static_cast<float>(g.kernel_h * g.kernel_w);
#pragma omp parallel for schedule(static) if (window_reads(g) > kParallelThreshold)
  for (std::int64_t plane = 0; plane < g.N * g.C; ++plane) {
    const float* in = x + plane * g.H * g.W;
    float* out = y + plane * g.P * g.Q;
    for (std::int64_t p = 0; p < g.P; ++p) {
      const PoolWindow rows = pool_window(p, g.stride_h, g.pad_h, g.kernel_h, g.H);
      for (std::int64_t q = 0; q < g.Q; ++q) {
        const PoolWindow cols = pool_window(q, g.stride_w, g.pad_w, g.kernel_w, g.W);
        float total = 0.0f;
        for (std::int64_t h = rows.begin; h < rows.end; ++h)
          for (std::int64_t w = cols.begin; w < cols.end; ++w)
            total += in[h * g.W + w];
        out[p * g.Q + q] = total * inverse_divisor;
      }
    }
  }
}

void avg_pool2d_backward(const Pool2dGeometry& g, const float* grad_y, float* grad_x) {
  const float inverse_divisor = 1.0f / static_cast<float>(g.kernel_h * g.kernel_w);
#pragma omp parallel for schedule(static) if (window_reads(g) > kParallelThreshold)
  for (std::int64_t plane = 0; plane < g.N * g.C; ++plane) {
    float* out = grad_x + plane * g.H * g.W;
    const float* grad = grad_y + plane * g.P * g.Q;
    for (std::int64_t i = 0; i < g.H * g.W; ++i)
      out[i] = 0.0f;
    for (std::int64_t p = 0; p < g.P; ++p) {
      const PoolWindow rows = pool_window(p, g.stride_h, g.pad_h, g.kernel_h, g.H);
      for (std::int64_t q = 0; q < g.Q; ++q) {
        const PoolWindow cols = pool_window(q, g.stride_w, g.pad_w, g.kernel_w, g.W);
        const float share = grad[p * g.Q + q] * inverse_divisor;
        for (std::int64_t h = rows.begin; h < rows.end; ++h)
          for (std::int64_t w = cols.begin; w < cols.end; ++w)
            out[h * g.W + w] += share;
      }
    }
  }
}

}  // namespace dscope::kernels::cpu
