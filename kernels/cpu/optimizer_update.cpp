// Optimizer updates on the CPU (see kernels/optimizer_update.h). Each is one elementwise loop, split across
// OpenMP threads for large parameters (a ResNet-18 has 2.4M-element convolution weights, while biases and
// batch norm parameters are too small for threads to pay off). Branches on the hyper-parameters are taken
// outside the loops so that the loops vectorise.
#include "kernels/optimizer_update.h"

#include <cmath>

namespace dscope::kernels::cpu {
namespace {
// Below this many elements a parameter is updated by one thread: starting the team costs more than it saves.
constexpr std::int64_t kParallelThreshold = 32768;
}  // namespace

void sgd_update(std::int64_t n, const SgdUpdate& update, float* param, const float* grad,
                float* momentum_buffer) {
  const float lr = update.learning_rate, decay = update.weight_decay, momentum = update.momentum;
  if (momentum_buffer == nullptr) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
    for (std::int64_t i = 0; i < n; ++i)
      param[i] -= lr * (grad[i] + decay * param[i]);
    return;
  }
  if (update.nesterov) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
    for (std::int64_t i = 0; i < n; ++i) {
      const float d = grad[i] + decay * param[i];
      const float buffer = momentum * momentum_buffer[i] + d;
      momentum_buffer[i] = buffer;
      param[i] -= lr * (d + momentum * buffer);
    }
    return;
  }
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (std::int64_t i = 0; i < n; ++i) {
    const float buffer = momentum * momentum_buffer[i] + (grad[i] + decay * param[i]);
    momentum_buffer[i] = buffer;
    param[i] -= lr * buffer;
  }
}

void adam_update(std::int64_t n, const AdamUpdate& update, float* param, const float* grad, float* exp_avg,
                 float* exp_avg_sq) {
  const float beta1 = update.beta1, beta2 = update.beta2, epsilon = update.epsilon;
  const float one_minus_beta1 = 1.0f - beta1, one_minus_beta2 = 1.0f - beta2;
  const float step_size = update.learning_rate / update.bias_correction1;
  const float correction2_sqrt = update.bias_correction2_sqrt;
  // Adam folds weight decay into the gradient (L2); AdamW shrinks the parameter before the Adam step, by a
  // factor PyTorch computes in double from the float hyper-parameters.
  const float l2 = update.decoupled_weight_decay ? 0.0f : update.weight_decay;
  const float shrink = update.decoupled_weight_decay
                           ? static_cast<float>(1.0 - static_cast<double>(update.learning_rate) *
                                                          static_cast<double>(update.weight_decay))
                           : 1.0f;
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (std::int64_t i = 0; i < n; ++i) {
    const float p = param[i] * shrink;
    const float g = grad[i] + l2 * p;
    const float m = beta1 * exp_avg[i] + one_minus_beta1 * g;
    const float v = beta2 * exp_avg_sq[i] + one_minus_beta2 * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    param[i] = p - step_size * (m / (std::sqrt(v) / correction2_sqrt + epsilon));
  }
}

void sum_of_squares(std::int64_t n, const float* x, double* total) {
  double sum = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : sum) if (n > kParallelThreshold)
  for (std::int64_t i = 0; i < n; ++i)
    sum += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  *total = sum;
}

}  // namespace dscope::kernels::cpu
