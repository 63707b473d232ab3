// Fused cross-entropy on the CPU (see kernels/cross_entropy.h). One thread takes whole samples; each row is
// read twice in the forward (maximum, then the exponentials and the loss) and three times in the backward
// (maximum, exponentials, gradient), all while it sits in L1. Row sums accumulate in double.
#include "kernels/cross_entropy.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

namespace dscope::kernels::cpu {
namespace {

// Below this many logits a parallel region costs more than it saves.
constexpr std::int64_t kParallelThreshold = 16384;

// The maximum of a row and log Σ exp(row − maximum), the two halves of a stable log-sum-exp.
struct RowNormalizer {
  float maximum;
  float log_total;
};

RowNormalizer row_normalizer(std::int64_t classes, const float* row) {
  float maximum = -std::numeric_limits<float>::infinity();
  for (std::int64_t c = 0; c < classes; ++c)
    maximum = std::max(maximum, row[c]);
  double total = 0.0;
  for (std::int64_t c = 0; c < classes; ++c)
    total += std::exp(row[c] - maximum);
  return {maximum, static_cast<float>(std::log(total))};
}

}  // namespace

void cross_entropy_forward(const CrossEntropyGeometry& g, const float* logits, const std::int64_t* targets,
                           const float* class_weights, float* losses, float* target_weights) {
  const float smoothing = g.label_smoothing;
  const float uniform = smoothing / static_cast<float>(g.classes);
#pragma omp parallel for schedule(static) if (g.N * g.classes > kParallelThreshold)
  for (std::int64_t i = 0; i < g.N; ++i) {
    const float* row = logits + i * g.classes;
    const std::int64_t target = targets[i];
    assert(target >= 0 && target < g.classes);  // the op checked every target
    const RowNormalizer normalizer = row_normalizer(g.classes, row);
    // −log_softmax(z)_c = log_total − (z_c − maximum) ≥ 0, so every term of the smoothing sum is
    // non-negative.
    const auto negative_log_probability = [&](std::int64_t c) {
      return static_cast<double>(normalizer.log_total) - static_cast<double>(row[c] - normalizer.maximum);
    };
    const float target_weight = class_weights ? class_weights[target] : 1.0f;
    double loss = static_cast<double>((1.0f - smoothing) * target_weight) * negative_log_probability(target);
    if (smoothing > 0.0f) {
      double smoothed = 0.0;
      for (std::int64_t c = 0; c < g.classes; ++c)
        smoothed +=
            static_cast<double>(class_weights ? class_weights[c] : 1.0f) * negative_log_probability(c);
      loss += static_cast<double>(uniform) * smoothed;
    }
    losses[i] = static_cast<float>(loss);
    target_weights[i] = target_weight;
  }
}

void cross_entropy_backward(const CrossEntropyGeometry& g, const float* logits, const std::int64_t* targets,
                            const float* class_weights, const float* scale, float* grad_logits) {
  const float smoothing = g.label_smoothing;
  const float uniform = smoothing / static_cast<float>(g.classes);
  double weight_total = 0.0;
  for (std::int64_t c = 0; c < g.classes; ++c)
    weight_total += class_weights ? class_weights[c] : 1.0f;
  const float uniform_total = uniform * static_cast<float>(weight_total);
  const float gradient_scale = scale[0];
#pragma omp parallel for schedule(static) if (g.N * g.classes > kParallelThreshold)
  for (std::int64_t i = 0; i < g.N; ++i) {
    const float* row = logits + i * g.classes;
    float* grad_row = grad_logits + i * g.classes;
    const std::int64_t target = targets[i];
    assert(target >= 0 && target < g.classes);  // the op checked every target
    const RowNormalizer normalizer = row_normalizer(g.classes, row);
    const float target_weight = class_weights ? class_weights[target] : 1.0f;
    // softmax_c · Σ_c' q_c' − (the uniform part of q_c); the one-hot part is subtracted at the target below.
    const float q_total = (1.0f - smoothing) * target_weight + uniform_total;
    for (std::int64_t c = 0; c < g.classes; ++c) {
      const float softmax = std::exp((row[c] - normalizer.maximum) - normalizer.log_total);
      const float weight = class_weights ? class_weights[c] : 1.0f;
      grad_row[c] = gradient_scale * (softmax * q_total - uniform * weight);
    }
    grad_row[target] -= gradient_scale * (1.0f - smoothing) * target_weight;
  }
}

}  // namespace dscope::kernels::cpu
