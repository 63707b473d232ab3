// BatchNorm2d: batch normalisation layer with PyTorch's parameter and buffer names, so a state dict
// lines up with torchvision's (weight, bias, running_mean, running_var, num_batches_tracked).
#pragma once

#include "nn/module.h"

namespace dscope::nn {

// Batch norm over channels. gamma starts at 1 (or 0 with zero_init, for the last norm of a residual
// branch), beta at 0; running statistics at mean 0, variance 1.
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(std::int64_t channels, float momentum = 0.1f, float eps = 1e-5f,
                       bool zero_init = false);
  Tensor forward(const Tensor& input) override;
  // relu(forward(input)), fused into the batch norm's passes (tensor/ops/batch_norm2d.h).
  Tensor forward_relu(const Tensor& input);
  // relu(forward(input) + residual), in the batch norm's forward pass (tensor/ops/batch_norm2d.h).
  Tensor forward_add_relu(const Tensor& input, const Tensor& residual);
  std::string describe() const override;
  float eps() const { return eps_; }
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  std::int64_t channels_;
  float momentum_, eps_;
};

}  // namespace dscope::nn
