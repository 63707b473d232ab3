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

}  // namespace

void accumulate_into(const Tensor& total, const Tensor& addition) {
  check_compatible(total, addition);
  const Tensor dense = addition.is_contiguous() ? addition : dense_copy(addition);
  // bfloat16 gradients (mixed precision) are added in float and each sum rounded once.
  if (total.dtype() == DType::BFloat16)
    DSCOPE_DISPATCH(total.device(), axpy, total.numel(), 1.0f, dense.data<BFloat16>(),
                    total.data<BFloat16>());
  else
    DSCOPE_DISPATCH(total.device(), axpy, total.numel(), 1.0f, dense.data<float>(), total.data<float>());
}

Tensor sum_of(const Tensor& first, const Tensor& second) {
  check_compatible(first, second);
  // Strided operands, and bfloat16 ones (whose only add is the in-place one), copy first and add into it.
  if (!first.is_contiguous() || !second.is_contiguous() || first.dtype() == DType::BFloat16) {
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
