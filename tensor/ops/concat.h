// Joining tensors along an existing axis, differentiable (the gradient of each input is its slice).
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace dscope {

// All inputs must agree in every extent but `axis`; at least one input.
Tensor concat(const std::vector<Tensor>& inputs, std::int64_t axis);

}  // namespace dscope
