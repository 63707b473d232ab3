#include "nn/conv_batch_norm.h"

#include <cmath>
#include <vector>

#include "tensor/autograd/grad_mode.h"
#include "tensor/ops/arithmetic.h"
#include "tensor/ops/conv2d.h"

namespace dscope::nn {

namespace {

bool runs_folded(const BatchNorm2d& norm) {
  return !norm.is_training() && !grad_enabled();
}

struct Folded {
  Tensor weight, bias;
};

// The convolution's weights and bias with the batch norm (in evaluation mode) folded in.
Folded fold(const Conv2d& conv, const BatchNorm2d& norm) {
  const std::int64_t channels = conv.weight.size(0);
  DSCOPE_CHECK(norm.weight.numel() == channels, ShapeError, "conv_batch_norm: ", norm.describe(), " after ",
               conv.describe());
  // The per-channel factors are a few hundred values: computed on the host, in double.
  const std::vector<float> gamma = norm.weight.to_vector<float>(), beta = norm.bias.to_vector<float>();
  const std::vector<float> mean = norm.running_mean.to_vector<float>(),
                           var = norm.running_var.to_vector<float>();
  const std::vector<float> conv_bias = conv.bias.defined()
                                           ? conv.bias.to_vector<float>()
                                           : std::vector<float>(static_cast<std::size_t>(channels));
  std::vector<float> scale(static_cast<std::size_t>(channels)), shift(scale.size());
  for (std::size_t k = 0; k < scale.size(); ++k) {
    const double factor = static_cast<double>(gamma[k]) / std::sqrt(static_cast<double>(var[k]) + norm.eps());
    scale[k] = static_cast<float>(factor);
    shift[k] = static_cast<float>(beta[k] + (static_cast<double>(conv_bias[k]) - mean[k]) * factor);
  }
  const Device device = conv.weight.device();
  return {conv.weight * Tensor::from_vector(scale, {channels, 1, 1, 1}, device),
          Tensor::from_vector(shift, {channels}, device)};
}

}  // namespace

Tensor conv_batch_norm(Conv2d& conv, BatchNorm2d& norm, const Tensor& input, bool relu) {
  if (!runs_folded(norm)) {
    const Tensor convolved = conv.forward(input);
    return relu ? norm.forward_relu(convolved) : norm.forward(convolved);
  }
  const Folded folded = fold(conv, norm);
  return relu ? conv2d_relu(input, folded.weight, folded.bias, conv.options())
              : conv2d(input, folded.weight, folded.bias, conv.options());
}

Tensor conv_batch_norm_add_relu(Conv2d& conv, BatchNorm2d& norm, const Tensor& input,
                                const Tensor& residual) {
  if (!runs_folded(norm)) return norm.forward_add_relu(conv.forward(input), residual);
  const Folded folded = fold(conv, norm);
  return conv2d_add_relu(input, folded.weight, folded.bias, residual, conv.options());
}

}  // namespace dscope::nn
