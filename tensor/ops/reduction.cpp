// sum, mean and sum_to (see reduction.h).
//
// Forward: sort the reduced axes, merge runs of adjacent ones, and reduce each run with the
// [outer, extent, inner] kernel, last run first, so the shape ahead of each run stays valid.
// Backward: the gradient of a sum is the output gradient broadcast back over the reduced axes; that is
// an expand view (stride 0), which costs no memory until a consumer makes it dense.
#include "tensor/ops/reduction.h"

#include <algorithm>

#include "kernels/reduce.h"
#include "tensor/autograd/node.h"
#include "tensor/dispatch.h"
#include "tensor/ops/arithmetic.h"
#include "tensor/ops/checks.h"

namespace dscope {
namespace {

std::vector<std::int64_t> normalized_axes(const Tensor& x, const std::vector<std::int64_t>& axes,
                                          const char* op) {
  std::vector<std::int64_t> result;
  if (axes.empty()) {
    for (std::int64_t axis = 0; axis < x.rank(); ++axis)
      result.push_back(axis);
    return result;
  }
  for (std::int64_t axis : axes)
    result.push_back(normalize_axis(axis, x.rank(), op));
  std::sort(result.begin(), result.end());
  DSCOPE_CHECK(std::adjacent_find(result.begin(), result.end()) == result.end(), ShapeError, op,
               ": an axis is repeated in the list of axes (tensor shape ", x.shape(), ")");
  return result;
}

// Reduces `x` (dense) over the sorted `axes`; the result keeps the reduced axes with extent 1.
Tensor sum_keepdim(const Tensor& x, const std::vector<std::int64_t>& axes) {
  Tensor current = x.contiguous();
  for (std::size_t end = axes.size(); end > 0;) {
    // Find the run [first, last] of adjacent axes ending at axes[end - 1].
    std::size_t begin = end - 1;
    while (begin > 0 && axes[begin - 1] == axes[begin] - 1)
      --begin;
    const std::int64_t first = axes[begin], last = axes[end - 1];
    kernels::ReduceGeometry g;
    std::vector<std::int64_t> dims = current.shape().dims();
    for (std::int64_t axis = 0; axis < current.rank(); ++axis) {
      const std::int64_t extent = dims[static_cast<std::size_t>(axis)];
      if (axis < first)
        g.outer *= extent;
      else if (axis > last)
        g.inner *= extent;
      else
        g.extent *= extent;
    }
    for (std::int64_t axis = first; axis <= last; ++axis)
      dims[static_cast<std::size_t>(axis)] = 1;
    Tensor reduced = Tensor::empty(Shape(dims), DType::Float32, current.device());
    DSCOPE_DISPATCH(current.device(), sum, g, current.data<float>(), reduced.data<float>());
    current = reduced;
    end = begin;
  }
  return current;
}

Shape without_axes(const Shape& shape, const std::vector<std::int64_t>& axes) {
  std::vector<std::int64_t> dims;
  for (std::int64_t axis = 0; axis < shape.rank(); ++axis)
    if (!std::binary_search(axes.begin(), axes.end(), axis)) dims.push_back(shape[axis]);
  return Shape(std::move(dims));
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim) {
  detail::check_float(x, "sum", "x");
  const std::vector<std::int64_t> reduced = normalized_axes(x, axes, "sum");
  const Tensor kept = sum_keepdim(x, reduced);
  // detach(): a fresh handle even when nothing was reduced and `kept` is x itself.
  Tensor y = keepdim ? kept.detach() : kept.detach().view(without_axes(x.shape(), reduced));
  const Shape x_shape = x.shape(), kept_shape = kept.shape();
  return autograd::record("sum", y, {x}, [x_shape, kept_shape](const Tensor& grad_y) -> autograd::Gradients {
    return {grad_y.reshape(kept_shape).expand(x_shape)};
  });
}

Tensor mean(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim) {
  detail::check_float(x, "mean", "x");
  const std::vector<std::int64_t> reduced = normalized_axes(x, axes, "mean");
  std::int64_t count = 1;
  for (std::int64_t axis : reduced)
    count *= x.shape()[axis];
  DSCOPE_CHECK(count > 0, ShapeError, "mean: reduces over zero elements (shape ", x.shape(), ")");
  // A composite: its backward is sum's followed by mul_scalar's.
  return mul_scalar(sum(x, reduced, keepdim), 1.0f / static_cast<float>(count));
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  DSCOPE_CHECK(broadcast_shapes(shape, x.shape(), "sum_to") == x.shape(), ShapeError, "sum_to: shape ", shape,
               " does not broadcast to ", x.shape());
  // Leading axes that `shape` lacks, and axes where it has 1 but x does not.
  const std::int64_t lead = x.rank() - shape.rank();
  std::vector<std::int64_t> axes;
  for (std::int64_t axis = 0; axis < x.rank(); ++axis)
    if (axis < lead || (shape[axis - lead] == 1 && x.shape()[axis] != 1)) axes.push_back(axis);
  if (axes.empty()) return x.reshape(shape);
  return sum(x, axes, true).reshape(shape);
}

}  // namespace dscope
