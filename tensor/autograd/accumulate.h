// Adding one gradient into another, shared by the engine (gradients meeting at a node) and
// AccumulateGrad (gradients landing in a leaf's grad).
#pragma once

#include "tensor/tensor.h"

namespace dscope::autograd {

// total += addition, elementwise, same shape. `total` must be dense and not alias `addition`.
void accumulate_into(const Tensor& total, const Tensor& addition);

}  // namespace dscope::autograd
