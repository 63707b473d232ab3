// relu and sigmoid (see activation.h). Each saves only its output y, because the derivative is a cheap
// function of y (relu' = [y > 0], sigmoid' = y(1 − y)); the input can be freed after the forward.
#include "tensor/ops/activation.h"

#include "kernels/activation.h"
#include "tensor/autograd/node.h"
#include "tensor/dispatch.h"
#include "tensor/ops/checks.h"

namespace dscope {

Tensor relu(const Tensor& x) {
  detail::check_float(x, "relu", "x");
  const Tensor dense = x.contiguous();
  Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
  DSCOPE_DISPATCH(x.device(), relu_forward, x.numel(), dense.data<float>(), y.data<float>());
  const Tensor y_saved = y.detach();
  return autograd::record("relu", y, {x}, [y_saved](const Tensor& grad_y) -> autograd::Gradients {
    const Tensor grad = grad_y.contiguous();
    Tensor grad_x = Tensor::empty(y_saved.shape(), DType::Float32, y_saved.device());
    DSCOPE_DISPATCH(grad.device(), relu_backward, grad.numel(), grad.data<float>(), y_saved.data<float>(),
                    grad_x.data<float>());
    return {grad_x};
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
