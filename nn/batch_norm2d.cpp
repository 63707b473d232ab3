#include "nn/batch_norm2d.h"

#include "tensor/autograd/grad_mode.h"
#include "tensor/ops/arithmetic.h"
#include "tensor/ops/batch_norm2d.h"

namespace dscope::nn {

BatchNorm2d::BatchNorm2d(std::int64_t channels, float momentum, float eps, bool zero_init)
    : channels_(channels), momentum_(momentum), eps_(eps) {
  DSCOPE_CHECK(channels > 0, ValueError, "BatchNorm2d: channels must be positive, got ", channels);
  weight = register_parameter("weight", zero_init ? Tensor::zeros({channels}) : Tensor::ones({channels}));
  bias = register_parameter("bias", Tensor::zeros({channels}));
  running_mean = register_buffer("running_mean", Tensor::zeros({channels}));
  running_var = register_buffer("running_var", Tensor::ones({channels}));
  // Counted as PyTorch does, so state dicts carry the same entries; dscope itself uses a fixed momentum.
  num_batches_tracked = register_buffer("num_batches_tracked", Tensor::zeros({}, DType::Int64));
}

Tensor BatchNorm2d::forward(const Tensor& input) {
  if (is_training()) ++num_batches_tracked.data<std::int64_t>()[0];
  return batch_norm2d(input, weight, bias, running_mean, running_var, is_training(), momentum_, eps_);
}

Tensor BatchNorm2d::forward_relu(const Tensor& input) {
  if (is_training()) ++num_batches_tracked.data<std::int64_t>()[0];
  return batch_norm2d_relu(input, weight, bias, running_mean, running_var, is_training(), momentum_, eps_);
}

Tensor BatchNorm2d::forward_add_relu(const Tensor& input, const Tensor& residual) {
  if (is_training()) ++num_batches_tracked.data<std::int64_t>()[0];
  return batch_norm2d_add_relu(input, weight, bias, running_mean, running_var, residual, is_training(),
                               momentum_, eps_);
}

std::string BatchNorm2d::describe() const {
  return detail::concat("BatchNorm2d(", channels_, ")");
}

}  // namespace dscope::nn
