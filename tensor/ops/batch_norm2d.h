// Batch normalisation over the channels of an NCHW tensor, differentiable in input, weight and bias.
#pragma once

#include "tensor/tensor.h"

namespace dscope {

// input [N, C, H, W]; weight (gamma) and bias (beta) [C]; running_mean and running_var [C] buffers.
// training: normalise with the batch mean and biased variance over (N, H, W), and update the running
//   statistics in place: running = (1 − momentum)·running + momentum·batch, using the unbiased variance
//   for running_var (as PyTorch does). The running buffers may be undefined (then nothing is tracked).
// evaluation: normalise with running_mean and running_var.
Tensor batch_norm2d(const Tensor& input, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                    const Tensor& running_var, bool training, float momentum = 0.1f, float eps = 1e-5f);

// relu(batch_norm2d(...)) in the batch norm's own passes, forward and backward: no pass of its own for the
// ReLU and no intermediate tensor (kernels/batch_norm2d.h, "Fused ReLU").
Tensor batch_norm2d_relu(const Tensor& input, const Tensor& weight, const Tensor& bias,
                         const Tensor& running_mean, const Tensor& running_var, bool training,
                         float momentum = 0.1f, float eps = 1e-5f);

// relu(batch_norm2d(...) + residual), residual of input's shape (a ResNet block's shortcut), in the batch
// norm's forward pass: no add_relu pass and no batch-norm output of its own (kernels/batch_norm2d.h,
// "Residual"). residual gets the gradient add_relu would give it.
Tensor batch_norm2d_add_relu(const Tensor& input, const Tensor& weight, const Tensor& bias,
                             const Tensor& running_mean, const Tensor& running_var, const Tensor& residual,
                             bool training, float momentum = 0.1f, float eps = 1e-5f);

}  // namespace dscope
