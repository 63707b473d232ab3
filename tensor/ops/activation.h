// Pointwise activations, differentiable. Both save only their output for backward.
#pragma once

#include "tensor/tensor.h"

namespace dscope {

Tensor relu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
// relu(a + b) for a and b of the same shape, in one pass and one new tensor: the join of a residual block.
// Both inputs receive relu's gradient.
Tensor add_relu(const Tensor& a, const Tensor& b);

}  // namespace dscope
