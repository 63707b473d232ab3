// Broadcasting arithmetic (see arithmetic.h).
//
// Forward: broadcast both operands to the output shape as stride-0 views, merge adjacent dimensions that
// are contiguous in all three tensors (a same-shape dense add becomes one flat loop), and call the kernel.
// Backward: the chain rule per operand, then sum_to() folds the gradient back over the broadcast axes.
#include "tensor/ops/arithmetic.h"

#include "kernels/elementwise.h"
#include "tensor/autograd/node.h"
#include "tensor/dispatch.h"
#include "tensor/ops/checks.h"
#include "tensor/ops/reduction.h"

namespace dscope {
namespace {

// Strides of `x` seen as broadcast to `out` (right-aligned; 0 on broadcast axes).
Strides broadcast_strides(const Tensor& x, const Shape& out) {
  Strides strides(static_cast<std::size_t>(out.rank()), 0);
  const std::int64_t lead = out.rank() - x.rank();
  for (std::int64_t axis = 0; axis < x.rank(); ++axis)
    if (x.shape()[axis] != 1)
      strides[static_cast<std::size_t>(lead + axis)] = x.strides()[static_cast<std::size_t>(axis)];
  return strides;
}

kernels::BroadcastGeometry broadcast_geometry(const Tensor& a, const Tensor& b, const Shape& out) {
  const Strides sa = broadcast_strides(a, out), sb = broadcast_strides(b, out);
  kernels::BroadcastGeometry g;
  // Merge axis into the previous one when, for both operands, stepping the previous axis once equals
  // stepping this axis across its whole extent (the output is dense, so it always merges).
  for (std::int64_t axis = 0; axis < out.rank(); ++axis) {
    const auto i = static_cast<std::size_t>(axis);
    if (out[axis] == 1) continue;
    if (g.rank > 0 && g.a_strides[g.rank - 1] == sa[i] * out[axis] &&
        g.b_strides[g.rank - 1] == sb[i] * out[axis]) {
      g.shape[g.rank - 1] *= out[axis];
      g.a_strides[g.rank - 1] = sa[i];
      g.b_strides[g.rank - 1] = sb[i];
      continue;
    }
    DSCOPE_CHECK(g.rank < kernels::kMaxRank, ShapeError, "elementwise: more than ", kernels::kMaxRank,
                 " non-mergeable dimensions in shape ", out);
    g.shape[g.rank] = out[axis];
    g.a_strides[g.rank] = sa[i];
    g.b_strides[g.rank] = sb[i];
    ++g.rank;
  }
  return g;
}

// The output and kernel geometry of a broadcasting binary op, after checking its operands.
struct BinaryCall {
  Tensor y;
  kernels::BroadcastGeometry geometry;
};

BinaryCall prepare_binary(const char* op, const Tensor& a, const Tensor& b) {
  detail::check_float(a, op, "a");
  detail::check_float(b, op, "b");
  detail::check_same_device(a, b, op);
  const Shape out_shape = broadcast_shapes(a.shape(), b.shape(), op);
  return {Tensor::empty(out_shape, DType::Float32, a.device()), broadcast_geometry(a, b, out_shape)};
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  auto [y, geometry] = prepare_binary("add", a, b);
  DSCOPE_DISPATCH(a.device(), add, geometry, a.data<float>(), b.data<float>(), y.data<float>());
  const Shape a_shape = a.shape(), b_shape = b.shape();
  return autograd::record("add", y, {a, b}, [a_shape, b_shape](const Tensor& grad_y) -> autograd::Gradients {
    return {sum_to(grad_y, a_shape), sum_to(grad_y, b_shape)};
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  auto [y, geometry] = prepare_binary("sub", a, b);
  DSCOPE_DISPATCH(a.device(), sub, geometry, a.data<float>(), b.data<float>(), y.data<float>());
  const Shape a_shape = a.shape(), b_shape = b.shape();
  return autograd::record("sub", y, {a, b}, [a_shape, b_shape](const Tensor& grad_y) -> autograd::Gradients {
    return {sum_to(grad_y, a_shape), sum_to(neg(grad_y), b_shape)};
  });
}

// d(a·b)/da = b and d(a·b)/db = a: each operand is saved for the other's gradient, and only if needed.
Tensor mul(const Tensor& a, const Tensor& b) {
  auto [y, geometry] = prepare_binary("mul", a, b);
  DSCOPE_DISPATCH(a.device(), mul, geometry, a.data<float>(), b.data<float>(), y.data<float>());
  const Shape a_shape = a.shape(), b_shape = b.shape();
  const Tensor a_saved = b.requires_grad() ? a.detach() : Tensor();
  const Tensor b_saved = a.requires_grad() ? b.detach() : Tensor();
  return autograd::record("mul", y, {a, b}, [=](const Tensor& grad_y) -> autograd::Gradients {
    return {b_saved.defined() ? sum_to(grad_y * b_saved, a_shape) : Tensor(),
            a_saved.defined() ? sum_to(grad_y * a_saved, b_shape) : Tensor()};
  });
}

// d(a/b)/da = 1/b and d(a/b)/db = −a/b² = −y/b: saves b and the output y, never a.
Tensor div(const Tensor& a, const Tensor& b) {
  auto [y, geometry] = prepare_binary("div", a, b);
  DSCOPE_DISPATCH(a.device(), div, geometry, a.data<float>(), b.data<float>(), y.data<float>());
  const Shape a_shape = a.shape();
  const Tensor b_saved = b.detach();
  const Tensor y_saved = b.requires_grad() ? y.detach() : Tensor();
  return autograd::record(
      "div", y, {a, b}, [a_shape, b_saved, y_saved](const Tensor& grad_y) -> autograd::Gradients {
        const Tensor grad_over_b = grad_y / b_saved;
        return {sum_to(grad_over_b, a_shape),
                y_saved.defined() ? sum_to(neg(grad_over_b * y_saved), b_saved.shape()) : Tensor()};
      });
}

namespace {
Tensor dense_input(const Tensor& x, const char* op) {
  detail::check_float(x, op, "x");
  return x.is_contiguous() ? x : dense_copy(x);
}
}  // namespace

Tensor add_scalar(const Tensor& x, float scalar) {
  const Tensor dense = dense_input(x, "add_scalar");
  Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
  DSCOPE_DISPATCH(x.device(), add_scalar, x.numel(), dense.data<float>(), scalar, y.data<float>());
  return autograd::record("add_scalar", y, {x},
                          [](const Tensor& grad_y) -> autograd::Gradients { return {grad_y}; });
}

Tensor mul_scalar(const Tensor& x, float scalar) {
  const Tensor dense = dense_input(x, "mul_scalar");
  Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
  DSCOPE_DISPATCH(x.device(), mul_scalar, x.numel(), dense.data<float>(), scalar, y.data<float>());
  return autograd::record("mul_scalar", y, {x}, [scalar](const Tensor& grad_y) -> autograd::Gradients {
    return {mul_scalar(grad_y, scalar)};
  });
}

Tensor neg(const Tensor& x) {
  const Tensor dense = dense_input(x, "neg");
  Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
  DSCOPE_DISPATCH(x.device(), neg, x.numel(), dense.data<float>(), y.data<float>());
  return autograd::record("neg", y, {x},
                          [](const Tensor& grad_y) -> autograd::Gradients { return {neg(grad_y)}; });
}

}  // namespace dscope
