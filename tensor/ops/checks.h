// Argument checks shared by the ops; each names the op and the offending tensor's shape.
#pragma once

#include "tensor/tensor.h"

namespace dscope::detail {

inline void check_defined(const Tensor& x, const char* op, const char* argument) {
  DSCOPE_CHECK(x.defined(), Error, op, ": ", argument, " is an undefined tensor");
}

inline void check_float(const Tensor& x, const char* op, const char* argument) {
  check_defined(x, op, argument);
  DSCOPE_CHECK(x.dtype() == DType::Float32, DTypeError, op, ": ", argument, " must be float32 but is ",
               dtype_name(x.dtype()), " (shape ", x.shape(), ")");
}

// For ops that also accept bfloat16 activations (mixed precision, tensor/autocast.h), which they read with
// dense_as(x, DType::Float32).
inline void check_floating(const Tensor& x, const char* op, const char* argument) {
  check_defined(x, op, argument);
  DSCOPE_CHECK(x.dtype() == DType::Float32 || x.dtype() == DType::BFloat16, DTypeError, op, ": ", argument,
               " must be float32 or bfloat16 but is ", dtype_name(x.dtype()), " (shape ", x.shape(), ")");
}

inline void check_rank(const Tensor& x, std::int64_t rank, const char* op, const char* argument) {
  DSCOPE_CHECK(x.rank() == rank, ShapeError, op, ": ", argument, " must have rank ", rank, " but has shape ",
               x.shape());
}

inline void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  DSCOPE_CHECK(a.device() == b.device(), DeviceError, op, ": operands on different devices (", a.device(),
               " and ", b.device(), ")");
}

}  // namespace dscope::detail
