// Log-softmax on the CPU (see kernels/log_softmax.h).
//
// Two loop orders, as in kernels/cpu/reduce.cpp. When the axis is the last one (inner = 1) each line is
// contiguous and one thread takes whole lines. Otherwise the lines of one outer index are interleaved in
// memory (line i's elements are `inner` apart), so a task takes a block of kBlock adjacent lines and walks
// the axis outermost: the innermost loop then runs over contiguous memory, and the per-line maxima and sums
// live in small stack arrays (4 KiB), so nothing is allocated.
#include "kernels/log_softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace dscope::kernels::cpu {
namespace {

// Below this many elements a parallel region costs more than it saves.
constexpr std::int64_t kParallelThreshold = 16384;
// Lines per task when inner > 1.
constexpr std::int64_t kBlock = 256;
constexpr float kMinusInfinity = -std::numeric_limits<float>::infinity();

}  // namespace

void log_softmax_forward(const ReduceGeometry& g, const float* x, float* y) {
  const std::int64_t work = g.outer * g.extent * g.inner;
  if (g.inner == 1) {
#pragma omp parallel for schedule(static) if (work > kParallelThreshold)
    for (std::int64_t o = 0; o < g.outer; ++o) {
      const float* line = x + o * g.extent;
      float* out = y + o * g.extent;
      float maximum = kMinusInfinity;
      for (std::int64_t e = 0; e < g.extent; ++e)
        maximum = std::max(maximum, line[e]);
      double total = 0.0;
      for (std::int64_t e = 0; e < g.extent; ++e)
        total += std::exp(line[e] - maximum);
      const float log_total = static_cast<float>(std::log(total));
      for (std::int64_t e = 0; e < g.extent; ++e)
        out[e] = (line[e] - maximum) - log_total;
    }
    return;
  }
  const std::int64_t blocks = (g.inner + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (work > kParallelThreshold)
  for (std::int64_t task = 0; task < g.outer * blocks; ++task) {
    const std::int64_t o = task / blocks, first = (task % blocks) * kBlock;
    const std::int64_t width = std::min(kBlock, g.inner - first);
    const float* block_x = x + o * g.extent * g.inner + first;
    float* block_y = y + o * g.extent * g.inner + first;
    float maxima[kBlock];
    double totals[kBlock];
    float log_totals[kBlock];
    std::fill_n(maxima, width, kMinusInfinity);
    std::fill_n(totals, width, 0.0);
    for (std::int64_t e = 0; e < g.extent; ++e) {
      const float* row = block_x + e * g.inner;
      for (std::int64_t i = 0; i < width; ++i)
        maxima[i] = std::max(maxima[i], row[i]);
    }
    for (std::int64_t e = 0; e < g.extent; ++e) {
      const float* row = block_x + e * g.inner;
      for (std::int64_t i = 0; i < width; ++i)
        totals[i] += std::exp(row[i] - maxima[i]);
    }
    for (std::int64_t i = 0; i < width; ++i)
      log_totals[i] = static_cast<float>(std::log(totals[i]));
    for (std::int64_t e = 0; e < g.extent; ++e) {
      const float* row = block_x + e * g.inner;
      float* out = block_y + e * g.inner;
      for (std::int64_t i = 0; i < width; ++i)
        out[i] = (row[i] - maxima[i]) - log_totals[i];
    }
  }
}

void log_softmax_backward(const ReduceGeometry& g, const float* grad_y, const float* y, float* grad_x) {
  const std::int64_t work = g.outer * g.extent * g.inner;
  if (g.inner == 1) {
#pragma omp parallel for schedule(static) if (work > kParallelThreshold)
    for (std::int64_t o = 0; o < g.outer; ++o) {
      const std::int64_t start = o * g.extent;
      double total = 0.0;
      for (std::int64_t e = 0; e < g.extent; ++e)
        total += grad_y[start + e];
      const float line_total = static_cast<float>(total);
      for (std::int64_t e = start; e < start + g.extent; ++e)
        grad_x[e] = grad_y[e] - std::exp(y[e]) * line_total;
    }
    return;
  }
  const std::int64_t blocks = (g.inner + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (work > kParallelThreshold)
  for (std::int64_t task = 0; task < g.outer * blocks; ++task) {
    const std::int64_t o = task / blocks, first = (task % blocks) * kBlock;
    const std::int64_t width = std::min(kBlock, g.inner - first);
    const std::int64_t start = o * g.extent * g.inner + first;
    double totals[kBlock];
    float line_totals[kBlock];
    std::fill_n(totals, width, 0.0);
    for (std::int64_t e = 0; e < g.extent; ++e) {
      const float* row = grad_y + start + e * g.inner;
      for (std::int64_t i = 0; i < width; ++i)
        totals[i] += row[i];
    }
    for (std::int64_t i = 0; i < width; ++i)
      line_totals[i] = static_cast<float>(totals[i]);
    for (std::int64_t e = 0; e < g.extent; ++e) {
      const std::int64_t row = start + e * g.inner;
      for (std::int64_t i = 0; i < width; ++i)
        grad_x[row + i] = grad_y[row + i] - std::exp(y[row + i]) * line_totals[i];
    }
  }
}

}  // namespace dscope::kernels::cpu
