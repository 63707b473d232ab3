// Pointwise activations, differentiable. Both save only their output for backward.
#pragma once

#include "tensor/tensor.h"

namespace dscope {

Tensor relu(const Tensor& x);
Tensor sigmoid(const Tensor& x);

}  // namespace dscope
