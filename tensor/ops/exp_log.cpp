// exp and log (see exp_log.h). exp saves its output (d e^x/dx = e^x); log saves its input (d ln x/dx = 1/x).
#include "tensor/ops/exp_log.h"

#include "kernels/elementwise.h"
#include "tensor/autograd/node.h"
#include "tensor/dispatch.h"
#include "tensor/ops/arithmetic.h"
#include "tensor/ops/checks.h"

namespace dscope {

Tensor exp(const Tensor& x) {
  detail::check_float(x, "exp", "x");
  const Tensor dense = x.contiguous();
  Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
  DSCOPE_DISPATCH(x.device(), exp, x.numel(), dense.data<float>(), y.data<float>());
  const Tensor y_saved = y.detach();
  return autograd::record(
      "exp", y, {x}, [y_saved](const Tensor& grad_y) -> autograd::Gradients { return {grad_y * y_saved}; });
}

Tensor log(const Tensor& x) {
  detail::check_float(x, "log", "x");
  const Tensor dense = x.contiguous();
  Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
  DSCOPE_DISPATCH(x.device(), log, x.numel(), dense.data<float>(), y.data<float>());
  const Tensor x_saved = x.detach();
  return autograd::record(
      "log", y, {x}, [x_saved](const Tensor& grad_y) -> autograd::Gradients { return {grad_y / x_saved}; });
}

}  // namespace dscope
