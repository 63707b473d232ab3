// Natural exponential and logarithm, differentiable. log of a non-positive value gives -inf or NaN, as in
// IEEE.
#pragma once

#include "tensor/tensor.h"

namespace dscope {

Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);

}  // namespace dscope
