// The differentiable views declared on Tensor: reshape, view, permute, transpose, narrow, expand,
// flatten, unsqueeze, squeeze, contiguous.
//
// A view shares storage and changes only shape, strides and offset; its backward maps the gradient back
// to the input's geometry: reshape back, permute by the inverse order, sum over expanded axes, or
// write into the narrowed slice of a zero tensor.
#include <algorithm>
#include <numeric>

#include "tensor/autograd/node.h"
#include "tensor/ops/reduction.h"

namespace dscope {
namespace {

// Replaces a single −1 by the extent that keeps the element count.
Shape infer_shape(const Shape& requested, std::int64_t numel, const Shape& from) {
  std::vector<std::int64_t> dims = requested.dims();
  std::int64_t known = 1;
  std::int64_t inferred_axis = -1;
  for (std::size_t axis = 0; axis < dims.size(); ++axis) {
    if (dims[axis] == -1) {
      DSCOPE_CHECK(inferred_axis < 0, ShapeError, "reshape: more than one -1 in ", requested);
      inferred_axis = static_cast<std::int64_t>(axis);
    } else {
      DSCOPE_CHECK(dims[axis] >= 0, ShapeError, "reshape: negative extent in ", requested);
      known *= dims[axis];
    }
  }
  if (inferred_axis >= 0) {
    DSCOPE_CHECK(known > 0 && numel % known == 0, ShapeError, "reshape: cannot reshape ", from, " (", numel,
                 " elements) to ", requested);
    dims[static_cast<std::size_t>(inferred_axis)] = numel / known;
    known *= numel / known;
  }
  DSCOPE_CHECK(known == numel, ShapeError, "reshape: cannot reshape ", from, " (", numel, " elements) to ",
               requested, " (", known, " elements)");
  return Shape(std::move(dims));
}

// Records a view whose gradient is the output gradient reshaped back to the input's shape.
Tensor record_reshape_like(const char* op, const Tensor& output, const Tensor& input) {
  const Shape input_shape = input.shape();
  return autograd::record(op, output, {input}, [input_shape](const Tensor& grad_y) -> autograd::Gradients {
    return {grad_y.reshape(input_shape)};
  });
}

}  // namespace

Tensor Tensor::view(const Shape& requested) const {
  const Shape target = infer_shape(requested, numel(), shape());
  DSCOPE_CHECK(is_contiguous(), ShapeError, "view: a tensor of shape ", shape(),
               " with non-contiguous strides cannot be viewed as ", target, "; use reshape(), which copies");
  return record_reshape_like("view", as_strided(target, contiguous_strides(target), offset()), *this);
}

Tensor Tensor::reshape(const Shape& requested) const {
  const Shape target = infer_shape(requested, numel(), shape());
  const Tensor dense = is_contiguous() ? *this : dense_copy(*this);
  return record_reshape_like("reshape", dense.as_strided(target, contiguous_strides(target), dense.offset()),
                             *this);
}

Tensor Tensor::flatten(std::int64_t start_axis, std::int64_t end_axis) const {
  if (rank() == 0) return reshape(Shape{1});
  const std::int64_t first = normalize_axis(start_axis, rank(), "flatten");
  const std::int64_t last = normalize_axis(end_axis, rank(), "flatten");
  DSCOPE_CHECK(first <= last, ShapeError, "flatten: start axis ", start_axis, " comes after end axis ",
               end_axis, " for shape ", shape());
  std::vector<std::int64_t> dims(shape().begin(), shape().begin() + first);
  std::int64_t merged = 1;
  for (std::int64_t axis = first; axis <= last; ++axis)
    merged *= shape()[axis];
  dims.push_back(merged);
  dims.insert(dims.end(), shape().begin() + last + 1, shape().end());
  return reshape(Shape(std::move(dims)));
}

Tensor Tensor::unsqueeze(std::int64_t axis) const {
  const std::int64_t at = normalize_axis(axis, rank() + 1, "unsqueeze");
  std::vector<std::int64_t> dims = shape().dims();
  Strides new_strides = strides();
  const std::int64_t inner_stride = at < rank() ? strides()[static_cast<std::size_t>(at)] * shape()[at] : 1;
  dims.insert(dims.begin() + at, 1);
  new_strides.insert(new_strides.begin() + at, inner_stride);
  return record_reshape_like("unsqueeze", as_strided(Shape(std::move(dims)), new_strides, offset()), *this);
}

Tensor Tensor::squeeze(std::int64_t axis) const {
  const std::int64_t at = normalize_axis(axis, rank(), "squeeze");
  DSCOPE_CHECK(shape()[at] == 1, ShapeError, "squeeze: axis ", axis, " has extent ", shape()[at],
               " (not 1) in shape ", shape());
  std::vector<std::int64_t> dims = shape().dims();
  Strides new_strides = strides();
  dims.erase(dims.begin() + at);
  new_strides.erase(new_strides.begin() + at);
  return record_reshape_like("squeeze", as_strided(Shape(std::move(dims)), new_strides, offset()), *this);
}

Tensor Tensor::permute(const std::vector<std::int64_t>& order) const {
  DSCOPE_CHECK(static_cast<std::int64_t>(order.size()) == rank(), ShapeError, "permute: ", order.size(),
               " axes given for a tensor of shape ", shape());
  std::vector<std::int64_t> axes, dims;
  Strides new_strides;
  for (std::int64_t axis : order) {
    const std::int64_t a = normalize_axis(axis, rank(), "permute");
    axes.push_back(a);
    dims.push_back(shape()[a]);
    new_strides.push_back(strides()[static_cast<std::size_t>(a)]);
  }
  std::vector<std::int64_t> sorted = axes;
  std::sort(sorted.begin(), sorted.end());
  DSCOPE_CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end(), ShapeError,
               "permute: the order repeats an axis (shape ", shape(), ")");
  std::vector<std::int64_t> inverse(axes.size());
  for (std::size_t i = 0; i < axes.size(); ++i)
    inverse[static_cast<std::size_t>(axes[i])] = static_cast<std::int64_t>(i);
  const Tensor y = as_strided(Shape(std::move(dims)), new_strides, offset());
  return autograd::record("permute", y, {*this}, [inverse](const Tensor& grad_y) -> autograd::Gradients {
    return {grad_y.permute(inverse)};
  });
}

Tensor Tensor::transpose(std::int64_t axis_a, std::int64_t axis_b) const {
  std::vector<std::int64_t> order(static_cast<std::size_t>(rank()));
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[static_cast<std::size_t>(normalize_axis(axis_a, rank(), "transpose"))],
            order[static_cast<std::size_t>(normalize_axis(axis_b, rank(), "transpose"))]);
  return permute(order);
}

Tensor Tensor::narrow(std::int64_t axis, std::int64_t start, std::int64_t length) const {
  const std::int64_t at = normalize_axis(axis, rank(), "narrow");
  DSCOPE_CHECK(start >= 0 && length >= 0 && start + length <= shape()[at], ShapeError, "narrow: [", start,
               ", ", start + length, ") is outside axis ", axis, " of extent ", shape()[at], " (shape ",
               shape(), ")");
  std::vector<std::int64_t> dims = shape().dims();
  dims[static_cast<std::size_t>(at)] = length;
  const Tensor y = as_strided(Shape(std::move(dims)), strides(),
                              offset() + start * strides()[static_cast<std::size_t>(at)]);
  const Shape input_shape = shape();
  return autograd::record("narrow", y, {*this},
                          [input_shape, at, start, length](const Tensor& grad_y) -> autograd::Gradients {
                            // The slice's gradient lands in its place; the rest of the input got no gradient,
                            // i.e. zero.
                            Tensor grad_x = Tensor::zeros(input_shape, grad_y.dtype(), grad_y.device());
                            copy_elements(grad_y, grad_x.narrow(at, start, length));
                            return {grad_x};
                          });
}

Tensor Tensor::expand(const Shape& target) const {
  DSCOPE_CHECK(target.rank() >= rank(), ShapeError, "expand: cannot expand ", shape(),
               " to fewer dimensions ", target);
  const std::int64_t lead = target.rank() - rank();
  Strides new_strides(static_cast<std::size_t>(target.rank()), 0);
  for (std::int64_t axis = 0; axis < rank(); ++axis) {
    const std::int64_t extent = shape()[axis];
    DSCOPE_CHECK(extent == target[lead + axis] || extent == 1, ShapeError, "expand: cannot expand ", shape(),
                 " to ", target, " (axis ", axis, " has extent ", extent, ")");
    if (extent == target[lead + axis])
      new_strides[static_cast<std::size_t>(lead + axis)] = strides()[static_cast<std::size_t>(axis)];
  }
  const Tensor y = as_strided(target, new_strides, offset());
  const Shape input_shape = shape();
  return autograd::record("expand", y, {*this}, [input_shape](const Tensor& grad_y) -> autograd::Gradients {
    return {sum_to(grad_y, input_shape)};
  });
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return autograd::record("contiguous", dense_copy(*this), {*this},
                          [](const Tensor& grad_y) -> autograd::Gradients { return {grad_y}; });
}

}  // namespace dscope
