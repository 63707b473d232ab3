// Fused cross-entropy on the GPU: see kernels/cross_entropy.h. One thread per sample, the CPU kernel's
// arithmetic line for line (a row is a handful of classes, so a thread walks it alone), row sums in double.
#include "kernels/cross_entropy.h"
#include "kernels/cuda/launch.cuh"

namespace dscope::kernels::cuda {
namespace {

// The maximum of a row and log Σ exp(row − maximum), the two halves of a stable log-sum-exp.
struct RowNormalizer {
  float maximum;
  float log_total;
};

__device__ RowNormalizer row_normalizer(std::int64_t classes, const float* row) {
  float maximum = -INFINITY;
  for (std::int64_t c = 0; c < classes; ++c)
    maximum = fmaxf(maximum, row[c]);
  double total = 0.0;
  for (std::int64_t c = 0; c < classes; ++c)
    total += expf(row[c] - maximum);
  return {maximum, static_cast<float>(::log(total))};
}

__global__ void cross_entropy_forward_kernel(CrossEntropyGeometry g, const float* logits,
                                             const std::int64_t* targets, const float* class_weights,
                                             float* losses, float* target_weights) {
  const float smoothing = g.label_smoothing;
  const float uniform = smoothing / static_cast<float>(g.classes);
  DSCOPE_GRID_STRIDE_LOOP(i, g.N) {
    const float* row = logits + i * g.classes;
    const std::int64_t target = targets[i];
    const RowNormalizer normalizer = row_normalizer(g.classes, row);
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

__global__ void cross_entropy_backward_kernel(CrossEntropyGeometry g, const float* logits,
                                              const std::int64_t* targets, const float* class_weights,
                                              const float* scale, float* grad_logits) {
  const float smoothing = g.label_smoothing;
  const float uniform = smoothing / static_cast<float>(g.classes);
  double weight_total = 0.0;
  for (std::int64_t c = 0; c < g.classes; ++c)
    weight_total += class_weights ? class_weights[c] : 1.0f;
  const float uniform_total = uniform * static_cast<float>(weight_total);
  const float gradient_scale = scale[0];
  DSCOPE_GRID_STRIDE_LOOP(i, g.N) {
    const float* row = logits + i * g.classes;
    float* grad_row = grad_logits + i * g.classes;
    const std::int64_t target = targets[i];
    const RowNormalizer normalizer = row_normalizer(g.classes, row);
    const float target_weight = class_weights ? class_weights[target] : 1.0f;
    const float q_total = (1.0f - smoothing) * target_weight + uniform_total;
    for (std::int64_t c = 0; c < g.classes; ++c) {
      const float softmax = expf((row[c] - normalizer.maximum) - normalizer.log_total);
      const float weight = class_weights ? class_weights[c] : 1.0f;
      grad_row[c] = gradient_scale * (softmax * q_total - uniform * weight);
    }
    grad_row[target] -= gradient_scale * (1.0f - smoothing) * target_weight;
  }
}

}  // namespace

void cross_entropy_forward(const CrossEntropyGeometry& g, const float* logits, const std::int64_t* targets,
                           const float* class_weights, float* losses, float* target_weights) {
  if (g.N == 0) return;
  cross_entropy_forward_kernel<<<blocks_for(g.N), kThreadsPerBlock, 0, current_stream()>>>(
      g, logits, targets, class_weights, losses, target_weights);
  check_launch("cross_entropy_forward");
}

void cross_entropy_backward(const CrossEntropyGeometry& g, const float* logits, const std::int64_t* targets,
                            const float* class_weights, const float* scale, float* grad_logits) {
  if (g.N == 0) return;
  cross_entropy_backward_kernel<<<blocks_for(g.N), kThreadsPerBlock, 0, current_stream()>>>(
      g, logits, targets, class_weights, scale, grad_logits);
  check_launch("cross_entropy_backward");
}

}  // namespace dscope::kernels::cuda
