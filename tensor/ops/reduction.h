// Sums and means over all axes or a set of axes, differentiable.
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace dscope {

// Sum over `axes` (negative counts from the end; empty means every axis). keepdim leaves the reduced axes
// in place with extent 1, so the result broadcasts against x.
Tensor sum(const Tensor& x, const std::vector<std::int64_t>& axes = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<std::int64_t>& axes = {}, bool keepdim = false);

// Sums x down to `shape`, the inverse of broadcasting `shape` up to x.shape(): the gradient of a
// broadcast. Throws ShapeError if `shape` does not broadcast to x.shape().
Tensor sum_to(const Tensor& x, const Shape& shape);

}  // namespace dscope
