// relu and sigmoid (see activation.h). Each saves only its output y, because the derivative is a cheap
// function of y (relu' = [y > 0], sigmoid' = y(1 − y)); the input can be freed after the forward. relu and
// add_relu also take bfloat16 activations (tensor/autocast.h), their kernels reading and writing them
// directly: computed in float, stored in the input's dtype, and so are their gradients.
#include "tensor/ops/activation.h"

#include "kernels/activation.h"
#include "tensor/autograd/node.h"
#include "tensor/dispatch.h"
#include "tensor/ops/activation_type.h"
#include "tensor/ops/checks.h"

namespace dscope {

namespace {
// relu's gradient from its output: grad_y where y > 0, else 0, in y's dtype.
Tensor relu_gradient(const Tensor& grad_y, const Tensor& y) {
  const Tensor grad = dense_as(grad_y, y.dtype());
  Tensor grad_x = Tensor::empty(y.shape(), y.dtype(), y.device());
  detail::with_activation_type(y.dtype(), [&](auto element) {
    using T = decltype(element);
    DSCOPE_DISPATCH(grad.device(), relu_backward, grad.numel(), grad.data<T>(), y.data<T>(),
                    grad_x.data<T>());
  });
  return grad_x;
}
}  // namespace

Tensor relu(const Tensor& x) {
  detail::check_floating(x, "relu", "x");
  const Tensor dense = dense_as(x, x.dtype());
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  detail::with_activation_type(x.dtype(), [&](auto element) {
    using T = decltype(element);
    DSCOPE_DISPATCH(x.device(), relu_forward, x.numel(), dense.data<T>(), y.data<T>());
  });
  const Tensor y_saved = y.detach();
  return autograd::record("relu", y, {x}, [y_saved](const Tensor& grad_y) -> autograd::Gradients {
    return {relu_gradient(grad_y, y_saved)};
  });
}

Tensor add_relu(const Tensor& a, const Tensor& b) {
  detail::check_floating(a, "add_relu", "a");
  detail::check_floating(b, "add_relu", "b");
  detail::check_same_device(a, b, "add_relu");
  DSCOPE_CHECK(a.shape() == b.shape(), ShapeError, "add_relu: a ", a.shape(), " and b ", b.shape(),
               " must have the same shape");
  DSCOPE_CHECK(a.dtype() == b.dtype(), DTypeError, "add_relu: a is ", dtype_name(a.dtype()), " and b is ",
               dtype_name(b.dtype()), "; they must have the same dtype (shape ", a.shape(), ")");
  const Tensor a_dense = dense_as(a, a.dtype()), b_dense = dense_as(b, a.dtype());
  Tensor y = Tensor::empty(a.shape(), a.dtype(), a.device());
  detail::with_activation_type(a.dtype(), [&](auto element) {
    using T = decltype(element);
    DSCOPE_DISPATCH(a.device(), add_relu_forward, a.numel(), a_dense.data<T>(), b_dense.data<T>(),
                    y.data<T>());
  });
  const Tensor y_saved = y.detach();
  return autograd::record("add_relu", y, {a, b}, [y_saved](const Tensor& grad_y) -> autograd::Gradients {
    const Tensor grad = relu_gradient(grad_y, y_saved);
    return {grad, grad};
  });
}

Tensor sigmoid(const Tensor& x) {
  detail::check_float(x, "sigmoid", "x");
  const Tensor dense = x.contiguous();
  Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
  DSCOPE_DISPATCH(x.device(), sigmoid_forward, x.numel(), dense.data<float>(), y.data<float>());
  const Tensor y_saved = y.detach();
  return autograd::record("sigmoid", y, {x}, [y_saved](const Tensor& grad_y) -> autograd::Gradients {
    const Tensor grad = grad_y.contiguous();
    Tensor grad_x = Tensor::empty(y_saved.shape(), DType::Float32, y_saved.device());
    DSCOPE_DISPATCH(grad.device(), sigmoid_backward, grad.numel(), grad.data<float>(), y_saved.data<float>(),
                    grad_x.data<float>());
    return {grad_x};
  });
}

}  // namespace dscope
