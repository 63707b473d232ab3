#include "tensor/autograd/accumulate.h"

#include "kernels/elementwise.h"
#include "tensor/dispatch.h"

namespace dscope::autograd {

void accumulate_into(const Tensor& total, const Tensor& addition) {
  DSCOPE_CHECK(total.shape() == addition.shape(), ShapeError, "autograd: cannot add a gradient of shape ",
               addition.shape(), " into one of shape ", total.shape());
  DSCOPE_CHECK(total.device() == addition.device(), DeviceError, "autograd: gradient on ", addition.device(),
               " meets one on ", total.device());
  const Tensor dense = addition.is_contiguous() ? addition : dense_copy(addition);
  DSCOPE_DISPATCH(total.device(), axpy, total.numel(), 1.0f, dense.data<float>(), total.data<float>());
}

}  // namespace dscope::autograd
