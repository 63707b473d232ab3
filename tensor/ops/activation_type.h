// For ops whose kernels take float32 or bfloat16 activations (mixed precision, tensor/autocast.h): one
// body, written once over the element type, run for the dtype the activations have.
#pragma once

#include "tensor/dtype.h"

namespace dscope::detail {

// Calls body(T{}) with T the element type of `dtype`: BFloat16 for bfloat16, else float (the op has checked
// the dtype already, see check_floating).
template <typename Body>
void with_activation_type(DType dtype, Body&& body) {
  if (dtype == DType::BFloat16)
    body(BFloat16{});
  else
    body(float{});
}

}  // namespace dscope::detail
