// Inverted dropout, differentiable: in training, zero each element with probability p and scale the
// survivors by 1/(1−p), so evaluation is the identity. The mask is drawn from `generator` (seeded runs
// drop the same elements). p must be in [0, 1): p = 1 throws ValueError. In evaluation or with p = 0 it
// returns x itself and draws nothing from the generator.
#pragma once

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace dscope {

Tensor dropout(const Tensor& x, float p, bool training, Generator& generator = default_generator());

}  // namespace dscope
