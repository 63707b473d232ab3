// Log-softmax along an axis, differentiable, computed stably (the maximum is subtracted first).
#pragma once

#include "tensor/tensor.h"

namespace dscope {

Tensor log_softmax(const Tensor& x, std::int64_t axis = -1);
Tensor softmax(const Tensor& x, std::int64_t axis = -1);  // exp(log_softmax): probabilities for prediction

}  // namespace dscope
