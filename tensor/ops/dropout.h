// Inverted dropout, differentiable: in training, zero each element with probability p and scale the
// survivors by 1/(1−p), so evaluation is the identity. The mask is drawn from `generator` (seeded runs
// drop the same elements).
#pragma once

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace dscope {

Tensor dropout(const Tensor& x, float p, bool training, Generator& generator = default_generator());

}  // namespace dscope
