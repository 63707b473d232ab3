// cast (see cast.h). Saves nothing: the backward converts the gradient the other way, whatever the values.
#include "tensor/ops/cast.h"

#include "tensor/autograd/node.h"
#include "tensor/ops/checks.h"

namespace dscope {

Tensor cast(const Tensor& x, DType dtype) {
  detail::check_floating(x, "cast", "x");
  DSCOPE_CHECK(dtype == DType::Float32 || dtype == DType::BFloat16, DTypeError,
               "cast: the target must be float32 or bfloat16, not ", dtype_name(dtype), " (x ", x.shape(),
               ")");
  if (x.dtype() == dtype) return x;
  const DType source = x.dtype();
  return autograd::record(
      "cast", dense_as(x, dtype), {x},
      [source](const Tensor& grad_y) -> autograd::Gradients { return {dense_as(grad_y, source)}; });
}

}  // namespace dscope
