// Weight initialisation, all drawn from an explicit Generator so that a model is a function of its seed.
#pragma once

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace dscope::nn {

// fan_in = in_channels·R·S for a conv weight [K, C, R, S], in_features for a linear weight [out, in];
// fan_out = K·R·S, or out_features.
std::int64_t fan_in(const Shape& weight_shape);
std::int64_t fan_out(const Shape& weight_shape);

// He et al. 2015 for layers followed by ReLU: normal with standard deviation sqrt(2 / fan). ResNets use
// fan_out (as torchvision does), which keeps the gradients' scale through the backward pass.
enum class FanMode { In, Out };
Tensor kaiming_normal(const Shape& shape, FanMode mode, Generator& generator);
// Uniform in [−bound, bound] with bound = 1/sqrt(fan_in): PyTorch's default for linear layers.
Tensor fan_in_uniform(const Shape& shape, std::int64_t fan, Generator& generator);

}  // namespace dscope::nn
