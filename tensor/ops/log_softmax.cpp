// log_softmax and softmax (see log_softmax.h).
//
// The axis splits a dense tensor into [outer, extent, inner] (kernels/log_softmax.h), so one kernel serves
// every axis without a transpose. Backward saves only the output y: softmax = exp(y) is all the derivative
// needs (grad_x = grad_y − exp(y) · Σ_axis grad_y), and the input can be freed after the forward.
// softmax is the composite exp(log_softmax(x)), and gets its backward from the two ops.
#include "tensor/ops/log_softmax.h"

#include "kernels/log_softmax.h"
#include "tensor/autograd/node.h"
#include "tensor/dispatch.h"
#include "tensor/ops/checks.h"
#include "tensor/ops/exp_log.h"

namespace dscope {

Tensor log_softmax(const Tensor& x, std::int64_t axis) {
  detail::check_float(x, "log_softmax", "x");
  DSCOPE_CHECK(axis >= -x.rank() && axis < x.rank(), ShapeError, "log_softmax: axis ", axis,
               " is out of range for x ", x.shape());
  const std::int64_t along = normalize_axis(axis, x.rank(), "log_softmax");
  kernels::ReduceGeometry g;
  for (std::int64_t dim = 0; dim < x.rank(); ++dim) {
    if (dim < along)
      g.outer *= x.shape()[dim];
    else if (dim > along)
      g.inner *= x.shape()[dim];
    else
      g.extent = x.shape()[dim];
  }
  const Tensor dense = x.contiguous();
  Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
  DSCOPE_DISPATCH(x.device(), log_softmax_forward, g, dense.data<float>(), y.data<float>());

  const Tensor y_saved = y.detach();
  return autograd::record("log_softmax", y, {x}, [g, y_saved](const Tensor& grad_y) -> autograd::Gradients {
    const Tensor grad = grad_y.contiguous();
    Tensor grad_x = Tensor::empty(y_saved.shape(), DType::Float32, y_saved.device());
    DSCOPE_DISPATCH(grad.device(), log_softmax_backward, g, grad.data<float>(), y_saved.data<float>(),
                    grad_x.data<float>());
    return {grad_x};
  });
}

Tensor softmax(const Tensor& x, std::int64_t axis) {
  return exp(log_softmax(x, axis));
}

}  // namespace dscope
