// Cross-entropy between logits and class indices, fused with its log-softmax, forward and backward.
//
// For sample i with logits z_i [classes], target t_i, class weights w (all ones when absent) and label
// smoothing ε, the loss is ℓ_i = −Σ_c q_ic · log_softmax(z_i)_c against the target distribution
//   q_ic = (1 − ε)·w[t_i]·[c = t_i] + (ε / classes)·w[c].
// This is PyTorch's definition: the one-hot part carries the target's weight, the uniform part each class's
// own weight. As Σ_c softmax(z_i)_c = 1, the gradient is ∂ℓ_i/∂z_ic = softmax(z_i)_c · Σ_c' q_ic' − q_ic,
// which is softmax − q when there are no weights. The kernels stop at per-sample values; the op reduces
// (Sum, or Mean: divided by Σ_i w[t_i]). The backward recomputes each row's log-sum-exp from the logits
// rather than having the forward save it: a row is a handful of classes, so one more pass over it is cheap.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace dscope::kernels {

struct CrossEntropyGeometry {
  std::int64_t N = 0;  // samples
  std::int64_t classes = 0;
  float label_smoothing = 0.0f;  // ε in [0, 1)
};

namespace reference {
// log Σ_c exp(row_c), computed after subtracting the row's maximum so that no exp overflows.
template <typename T>
T log_sum_exp(std::int64_t classes, const T* row) {
  T maximum = -std::numeric_limits<T>::infinity();
  for (std::int64_t c = 0; c < classes; ++c)
    maximum = std::fmax(maximum, row[c]);
  T total = 0;
  for (std::int64_t c = 0; c < classes; ++c)
    total += std::exp(row[c] - maximum);
  return maximum + std::log(total);
}

// logits [N, classes]; targets [N] in [0, classes); class_weights [classes] or null for all ones.
// Writes losses [N] (ℓ_i above) and target_weights [N] (w[t_i], or 1 without class weights).
template <typename T>
void cross_entropy_forward(const CrossEntropyGeometry& g, const T* logits, const std::int64_t* targets,
                           const T* class_weights, T* losses, T* target_weights) {
  const T smoothing = g.label_smoothing, uniform = smoothing / static_cast<T>(g.classes);
  for (std::int64_t i = 0; i < g.N; ++i) {
    const T* row = logits + i * g.classes;
    const std::int64_t target = targets[i];
    const T lse = log_sum_exp(g.classes, row);
    T loss = 0;
    for (std::int64_t c = 0; c < g.classes; ++c) {
      const T weight = class_weights ? class_weights[c] : T(1);
      const T q = uniform * weight + (c == target ? (1 - smoothing) * weight : T(0));
      loss -= q * (row[c] - lse);
    }
    losses[i] = loss;
    target_weights[i] = class_weights ? class_weights[target] : T(1);
  }
}

// Same logits, targets and class_weights; scale [1] is the loss's gradient divided by the reduction's
// denominator. Writes grad_logits [N, classes] = scale · ∂ℓ_i/∂z_ic.
template <typename T>
void cross_entropy_backward(const CrossEntropyGeometry& g, const T* logits, const std::int64_t* targets,
                            const T* class_weights, const T* scale, T* grad_logits) {
  const T smoothing = g.label_smoothing, uniform = smoothing / static_cast<T>(g.classes);
  T weight_total = 0;
  for (std::int64_t c = 0; c < g.classes; ++c)
    weight_total += class_weights ? class_weights[c] : T(1);
  for (std::int64_t i = 0; i < g.N; ++i) {
    const T* row = logits + i * g.classes;
    const std::int64_t target = targets[i];
    const T lse = log_sum_exp(g.classes, row);
    const T target_weight = class_weights ? class_weights[target] : T(1);
    const T q_total = (1 - smoothing) * target_weight + uniform * weight_total;
    for (std::int64_t c = 0; c < g.classes; ++c) {
      const T weight = class_weights ? class_weights[c] : T(1);
      const T q = uniform * weight + (c == target ? (1 - smoothing) * weight : T(0));
      grad_logits[i * g.classes + c] = scale[0] * (std::exp(row[c] - lse) * q_total - q);
    }
  }
}
}  // namespace reference

namespace cpu {
// Same contracts as the reference; row sums accumulate in double.
void cross_entropy_forward(const CrossEntropyGeometry& g, const float* logits, const std::int64_t* targets,
                           const float* class_weights, float* losses, float* target_weights);
void cross_entropy_backward(const CrossEntropyGeometry& g, const float* logits, const std::int64_t* targets,
                            const float* class_weights, const float* scale, float* grad_logits);
}  // namespace cpu

namespace cuda {
// Same contracts, on device pointers (scale too); one thread per sample.
void cross_entropy_forward(const CrossEntropyGeometry& g, const float* logits, const std::int64_t* targets,
                           const float* class_weights, float* losses, float* target_weights);
void cross_entropy_backward(const CrossEntropyGeometry& g, const float* logits, const std::int64_t* targets,
                            const float* class_weights, const float* scale, float* grad_logits);
}  // namespace cuda

}  // namespace dscope::kernels
