#include "tensor/autograd/accumulate.h"

#include "kernels/elementwise.h"
#include "tensor/dispatch.h"

namespace dscope::autograd {

namespace {

void check_compatible(const Tensor& total, const Tensor& addition) {
  DSCOPE_CHECK(total.shape() == addition.shape(), ShapeError, "autograd: cannot add a gradient of shape ",
               addition.shape(), " into one of shape ", total.shape());
  DSCOPE_CHECK(total.device() == addition.device(), DeviceError, "autograd: gradient on ", addition.device(),
               " meets one on ", total.device());
  DSCOPE_CHECK(total.dtype() == addition.dtype(), DTypeError, "autograd: a ", dtype_name(addition.dtype()),
               " gradient meets a ", dtype_name(total.dtype()), " one (shape ", total.shape(), ")");
}

// total + addition for bfloat16 gradients (mixed precision): added in float, the sum rounded once.
Tensor bfloat16_sum(const Tensor& total, const Tensor& addition) {
  const Tensor sum = dense_as(total, DType::Float32);  // a new tensor: the dtype differs
  accumulate_into(sum, dense_as(addition, DType::Float32));
  return dense_as(sum, DType::BFloat16);
}

}  // namespace

void accumulate_into(const Tensor& total, const Tensor& addition) {
  check_compatible(total, addition);
  if (total.dtype() == DType::BFloat16) {
    copy_elements(bfloat16_sum(total, addition), total);
    return;
  }
  const Tensor dense = addition.is_contiguous() ? addition : dense_copy(addition);
  DSCOPE_DISPATCH(total.device(), axpy, total.numel(), 1.0f, dense.data<float>(), total.data<float>());
}

Tensor sum_of(const Tensor& first, const Tensor& second) {
  check_compatible(first, second);
  if (first.dtype() == DType::BFloat16) return bfloat16_sum(first, second);
  if (!first.is_contiguous() || !second.is_contiguous()) {
    Tensor total = dense_copy(first);
    accumulate_into(total, second);
    return total;
  }
  Tensor total = Tensor::empty(first.shape(), DType::Float32, first.device());
  // Dense and of one shape: one flat run of numel elements on each side.
  kernels::BroadcastGeometry flat;
  flat.rank = 1;
  flat.shape[0] = first.numel();
  flat.a_strides[0] = flat.b_strides[0] = 1;
  DSCOPE_DISPATCH(first.device(), add, flat, first.data<float>(), second.data<float>(), total.data<float>());
  return total;
}

}  // namespace dscope::autograd
