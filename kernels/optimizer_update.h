// Optimizer updates: each parameter and its state buffers are rewritten in place, in one fused pass.
//
// One loop per parameter reads the gradient once and writes the parameter and its moments once, where a
// composition of ops would allocate and sweep several temporaries per parameter per step. The arithmetic is
// PyTorch's (torch.optim.SGD / Adam / AdamW, single-tensor path) step for step, in the same order, so that
// the results agree to float32 rounding; optim/sgd.h and optim/adam.h state the formulas. These elementwise
// loops are their own specification (kernels/README.md): there is no separate reference.
#pragma once

#include <cstdint>

namespace dscope::kernels {

struct SgdUpdate {
  float learning_rate = 0.0f;
  float weight_decay = 0.0f;  // L2: d = grad + weight_decay · param
  float momentum = 0.0f;      // 0 means plain SGD (and no momentum buffer)
  bool nesterov = false;      // step along d + momentum · buffer instead of the buffer
};

struct AdamUpdate {
  float learning_rate = 0.0f;
  float weight_decay = 0.0f;
  bool decoupled_weight_decay = false;  // AdamW: param *= 1 − lr · wd; Adam: grad += wd · param
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float epsilon = 1e-8f;
  // 1 − beta1^t and sqrt(1 − beta2^t) for this parameter's step count t ≥ 1, computed by the caller in
  // double (as PyTorch does in Python) and rounded once.
  float bias_correction1 = 1.0f;
  float bias_correction2_sqrt = 1.0f;
};

namespace cpu {
// param[n] -= lr · d, with d built from grad[n] as SgdUpdate describes. momentum_buffer[n] holds the
// momentum and is updated in place (buffer = momentum · buffer + d); it is null, and unused, when momentum is
// 0. Starting from a zero buffer reproduces PyTorch's first step, which sets the buffer to d.
void sgd_update(std::int64_t n, const SgdUpdate& update, float* param, const float* grad,
                float* momentum_buffer);

// param[n] -= lr / bias_correction1 · exp_avg / (sqrt(exp_avg_sq) / bias_correction2_sqrt + epsilon), after
// exp_avg[n] = beta1 · exp_avg + (1 − beta1) · g and exp_avg_sq[n] = beta2 · exp_avg_sq + (1 − beta2) · g².
void adam_update(std::int64_t n, const AdamUpdate& update, float* param, const float* grad, float* exp_avg,
                 float* exp_avg_sq);

// *total = Σ x[i]² over n elements, accumulated in double: the squared norm gradient clipping needs.
void sum_of_squares(std::int64_t n, const float* x, double* total);
}  // namespace cpu

namespace cuda {
// Same contracts; param, grad and the state buffers are device pointers, `total` is host memory (the caller
// needs the norm on the host to decide whether to clip).
void sgd_update(std::int64_t n, const SgdUpdate& update, float* param, const float* grad,
                float* momentum_buffer);
void adam_update(std::int64_t n, const AdamUpdate& update, float* param, const float* grad, float* exp_avg,
                 float* exp_avg_sq);
void sum_of_squares(std::int64_t n, const float* x, double* total);
}  // namespace cuda

}  // namespace dscope::kernels
