// cast: a tensor's values in another floating dtype, float32 ↔ bfloat16 (mixed precision: tensor/autocast.h).
#pragma once

#include "tensor/tensor.h"

namespace dscope {

// x's values as `dtype`: x itself when it already has it, else a dense tensor, rounded to nearest (ties to
// even) when narrowing to bfloat16, exact when widening. Differentiable: the gradient is cast back to x's
// dtype. Throws DTypeError for a dtype other than float32 or bfloat16, on either side.
Tensor cast(const Tensor& x, DType dtype);

}  // namespace dscope
