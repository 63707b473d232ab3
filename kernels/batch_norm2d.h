// Batch normalisation over the channels of an NCHW tensor: statistics, running averages, forward, backward.
//
// Each channel c is normalised over its M = N·H·W values: x̂ = (x − mean[c]) · inv_std[c], with
// inv_std = 1/√(variance + eps), then y = gamma[c] · x̂ + beta[c]. Training uses the batch mean and biased
// variance; evaluation uses the running averages. The kernels take the mean and inv_std rather than x̂, so
// the backward recomputes x̂ from x (one multiply-add) instead of reading a saved activation-sized buffer.
// gamma and beta may be null, meaning 1 and 0 (PyTorch's affine=False).
//
// Fused ReLU: with geometry.relu the forward writes max(gamma·x̂ + beta, 0), a batch norm and the ReLU after
// it in one pass, and the backward counts grad_y only where gamma·x̂ + beta is positive, which is ReLU's
// backward folded into the batch norm's. That saves the ReLU's own pass over the activation in each
// direction, and the batch norm's output as a separate tensor. The backward recomputes gamma·x̂ + beta from
// x, which it reads anyway, rather than reading the forward's output: the same expression as the forward's,
// so the same rounding and the same sign, for one tensor fewer in each of its two passes over memory.
//
// Residual: the forward may also add an array of y's shape before the ReLU, y = max(gamma·x̂ + beta + r, 0):
// a ResNet block's last batch norm, its shortcut added and the block's ReLU in one pass, where they were the
// batch norm's pass and then add_relu's over the batch norm's output. The backward does not take r: the
// caller masks grad_y by the sign of the forward's output (relu's backward) and calls it without g.relu.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/bfloat16.h"
#include "kernels/host_device.h"

namespace dscope::kernels {

struct BatchNorm2dGeometry {
  std::int64_t N = 0, C = 0, H = 0, W = 0;
  bool relu = false;  // the forward's output is clamped at 0 (fused ReLU, above)
  DSCOPE_HOST_DEVICE std::int64_t count() const {
    return N * H * W;
  }  // M: the values one channel is normalised over
};

namespace reference {
// x [N,C,H,W]; writes mean [C] and the biased variance [C] (divided by M) of each channel.
template <typename T>
void batch_norm2d_statistics(const BatchNorm2dGeometry& g, const T* x, T* mean, T* variance) {
  const std::int64_t plane = g.H * g.W;
  for (std::int64_t c = 0; c < g.C; ++c) {
    T total = 0;
    for (std::int64_t n = 0; n < g.N; ++n)
      for (std::int64_t i = 0; i < plane; ++i)
        total += x[(n * g.C + c) * plane + i];
    mean[c] = total / static_cast<T>(g.count());
    T squares = 0;
    for (std::int64_t n = 0; n < g.N; ++n)
      for (std::int64_t i = 0; i < plane; ++i) {
        const T deviation = x[(n * g.C + c) * plane + i] - mean[c];
        squares += deviation * deviation;
      }
    variance[c] = squares / static_cast<T>(g.count());
  }
}

// variance, inv_std [C]; writes inv_std = 1/√(variance + eps).
template <typename T>
void batch_norm2d_inverse_std(std::int64_t C, T eps, const T* variance, T* inv_std) {
  for (std::int64_t c = 0; c < C; ++c)
    inv_std[c] = T(1) / std::sqrt(variance[c] + eps);
}

// mean, variance (biased batch statistics), running_mean, running_var [C]; updates the running ones in place:
// running = (1 − momentum)·running + momentum·batch, with the variance made unbiased (· M/(M − 1)) first,
// as PyTorch does. Requires M > 1.
template <typename T>
void batch_norm2d_update_running_statistics(const BatchNorm2dGeometry& g, T momentum, const T* mean,
                                            const T* variance, T* running_mean, T* running_var) {
  const T unbiased = static_cast<T>(g.count()) / static_cast<T>(g.count() - 1);
  for (std::int64_t c = 0; c < g.C; ++c) {
    running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean[c];
    running_var[c] = (1 - momentum) * running_var[c] + momentum * variance[c] * unbiased;
  }
}

// x, y, residual [N,C,H,W]; mean, inv_std, gamma, beta [C] (gamma, beta, residual nullable); writes
// y = gamma·x̂ + beta (+ residual), clamped at 0 with g.relu.
template <typename T>
void batch_norm2d_forward(const BatchNorm2dGeometry& g, const T* x, const T* mean, const T* inv_std,
                          const T* gamma, const T* beta, const T* residual, T* y) {
  const std::int64_t plane = g.H * g.W;
  for (std::int64_t n = 0; n < g.N; ++n)
    for (std::int64_t c = 0; c < g.C; ++c)
      for (std::int64_t i = 0; i < plane; ++i) {
        const std::int64_t at = (n * g.C + c) * plane + i;
        const T x_hat = (x[at] - mean[c]) * inv_std[c];
        const T value =
            (gamma ? gamma[c] : T(1)) * x_hat + (beta ? beta[c] : T(0)) + (residual ? residual[at] : T(0));
        y[at] = g.relu && value < T(0) ? T(0) : value;
      }
}

// grad_y, x, grad_x [N,C,H,W]; mean, inv_std, gamma, beta, grad_gamma, grad_beta [C] (gamma, beta nullable,
// as in the forward). With g.relu, grad_y counts only where the forward's gamma·x̂ + beta is positive: below,
// grad_y stands for that masked gradient. Writes each non-null output:
//   grad_gamma = Σ grad_y·x̂,  grad_beta = Σ grad_y  (sums over N, H, W), and
//   batch_statistics (training: mean and inv_std are functions of x):
//     grad_x = (gamma·inv_std/M) · (M·grad_y − Σ grad_y − x̂ · Σ grad_y·x̂)
//   otherwise (evaluation: they are constants): grad_x = gamma·inv_std·grad_y.
template <typename T>
void batch_norm2d_backward(const BatchNorm2dGeometry& g, bool batch_statistics, const T* grad_y, const T* x,
                           const T* mean, const T* inv_std, const T* gamma, const T* beta, T* grad_x,
                           T* grad_gamma, T* grad_beta) {
  const std::int64_t plane = g.H * g.W;
  const T M = static_cast<T>(g.count());
  const auto grad_at = [&](std::int64_t at) {
    const std::int64_t c = at / plane % g.C;
    const T output = (gamma ? gamma[c] : T(1)) * ((x[at] - mean[c]) * inv_std[c]) + (beta ? beta[c] : T(0));
    return g.relu && !(output > T(0)) ? T(0) : grad_y[at];
  };
  for (std::int64_t c = 0; c < g.C; ++c) {
    T sum_grad = 0, sum_grad_x_hat = 0;
    for (std::int64_t n = 0; n < g.N; ++n)
      for (std::int64_t i = 0; i < plane; ++i) {
        const std::int64_t at = (n * g.C + c) * plane + i;
        sum_grad += grad_at(at);
        sum_grad_x_hat += grad_at(at) * (x[at] - mean[c]) * inv_std[c];
      }
    if (grad_gamma) grad_gamma[c] = sum_grad_x_hat;
    if (grad_beta) grad_beta[c] = sum_grad;
    if (!grad_x) continue;
    const T scale = (gamma ? gamma[c] : T(1)) * inv_std[c];
    for (std::int64_t n = 0; n < g.N; ++n)
      for (std::int64_t i = 0; i < plane; ++i) {
        const std::int64_t at = (n * g.C + c) * plane + i;
        const T x_hat = (x[at] - mean[c]) * inv_std[c];
        grad_x[at] = batch_statistics ? scale / M * (M * grad_at(at) - sum_grad - x_hat * sum_grad_x_hat)
                                      : scale * grad_at(at);
      }
  }
}
}  // namespace reference

namespace cpu {
// Same contracts as the reference. Channel sums accumulate in double; the variance is taken from sums of
// (x − x₀) and (x − x₀)² in one pass, x₀ being the channel's first value (see the .cpp).
void batch_norm2d_statistics(const BatchNorm2dGeometry& g, const float* x, float* mean, float* variance);
void batch_norm2d_inverse_std(std::int64_t C, float eps, const float* variance, float* inv_std);
void batch_norm2d_update_running_statistics(const BatchNorm2dGeometry& g, float momentum, const float* mean,
                                            const float* variance, float* running_mean, float* running_var);
void batch_norm2d_forward(const BatchNorm2dGeometry& g, const float* x, const float* mean,
                          const float* inv_std, const float* gamma, const float* beta, const float* residual,
                          float* y);
void batch_norm2d_backward(const BatchNorm2dGeometry& g, bool batch_statistics, const float* grad_y,
                           const float* x, const float* mean, const float* inv_std, const float* gamma,
                           const float* beta, float* grad_x, float* grad_gamma, float* grad_beta);

// The same on bfloat16 activations (x, residual, y, grad_y, grad_x; mixed precision): widened into float
// buffers, the kernels above, the outputs rounded once. The GPU's read and write them directly.
void batch_norm2d_statistics(const BatchNorm2dGeometry& g, const BFloat16* x, float* mean, float* variance);
void batch_norm2d_forward(const BatchNorm2dGeometry& g, const BFloat16* x, const float* mean,
                          const float* inv_std, const float* gamma, const float* beta,
                          const BFloat16* residual, BFloat16* y);
void batch_norm2d_backward(const BatchNorm2dGeometry& g, bool batch_statistics, const BFloat16* grad_y,
                           const BFloat16* x, const float* mean, const float* inv_std, const float* gamma,
                           const float* beta, BFloat16* grad_x, float* grad_gamma, float* grad_beta);
}  // namespace cpu

namespace cuda {
// Same contracts, on device pointers; channel sums accumulate in double as on the CPU.
void batch_norm2d_statistics(const BatchNorm2dGeometry& g, const float* x, float* mean, float* variance);
void batch_norm2d_inverse_std(std::int64_t C, float eps, const float* variance, float* inv_std);
void batch_norm2d_update_running_statistics(const BatchNorm2dGeometry& g, float momentum, const float* mean,
                                            const float* variance, float* running_mean, float* running_var);
void batch_norm2d_forward(const BatchNorm2dGeometry& g, const float* x, const float* mean,
                          const float* inv_std, const float* gamma, const float* beta, const float* residual,
                          float* y);
void batch_norm2d_backward(const BatchNorm2dGeometry& g, bool batch_statistics, const float* grad_y,
                           const float* x, const float* mean, const float* inv_std, const float* gamma,
                           const float* beta, float* grad_x, float* grad_gamma, float* grad_beta);
void batch_norm2d_statistics(const BatchNorm2dGeometry& g, const BFloat16* x, float* mean, float* variance);
void batch_norm2d_forward(const BatchNorm2dGeometry& g, const BFloat16* x, const float* mean,
                          const float* inv_std, const float* gamma, const float* beta,
                          const BFloat16* residual, BFloat16* y);
void batch_norm2d_backward(const BatchNorm2dGeometry& g, bool batch_statistics, const BFloat16* grad_y,
                           const BFloat16* x, const float* mean, const float* inv_std, const float* gamma,
                           const float* beta, BFloat16* grad_x, float* grad_gamma, float* grad_beta);
}  // namespace cuda

}  // namespace dscope::kernels
