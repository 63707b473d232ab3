// Adding one gradient into another, shared by the engine (gradients meeting at a node) and
// AccumulateGrad (gradients landing in a leaf's grad).
#pragma once

#include "tensor/tensor.h"

namespace dscope::autograd {

// total += addition, elementwise, same shape. `total` must be dense and not alias `addition`.
void accumulate_into(const Tensor& total, const Tensor& addition);

// first + second in a new dense tensor, same shape: where both are dense, one pass over them, where copying
// `first` and adding `second` into the copy would take two.
Tensor sum_of(const Tensor& first, const Tensor& second);

}  // namespace dscope::autograd
