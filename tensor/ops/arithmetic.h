// Elementwise arithmetic with NumPy broadcasting, scalar variants and negation; all differentiable.
// Operands must share device and be float32. Broadcast backward sums the gradient back to each input's shape.
#pragma once

#include "tensor/tensor.h"

namespace dscope {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add_scalar(const Tensor& x, float scalar);  // x + scalar
Tensor mul_scalar(const Tensor& x, float scalar);  // x * scalar
Tensor neg(const Tensor& x);

inline Tensor operator+(const Tensor& a, const Tensor& b) {
  return add(a, b);
}
inline Tensor operator-(const Tensor& a, const Tensor& b) {
  return sub(a, b);
}
inline Tensor operator*(const Tensor& a, const Tensor& b) {
  return mul(a, b);
}
inline Tensor operator/(const Tensor& a, const Tensor& b) {
  return div(a, b);
}
inline Tensor operator-(const Tensor& x) {
  return neg(x);
}
inline Tensor operator+(const Tensor& x, float s) {
  return add_scalar(x, s);
}
inline Tensor operator+(float s, const Tensor& x) {
  return add_scalar(x, s);
}
inline Tensor operator-(const Tensor& x, float s) {
  return add_scalar(x, -s);
}
inline Tensor operator-(float s, const Tensor& x) {
  return add_scalar(neg(x), s);
}
inline Tensor operator*(const Tensor& x, float s) {
  return mul_scalar(x, s);
}
inline Tensor operator*(float s, const Tensor& x) {
  return mul_scalar(x, s);
}
inline Tensor operator/(const Tensor& x, float s) {
  return mul_scalar(x, 1.0f / s);
}

}  // namespace dscope
