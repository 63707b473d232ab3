// Matrix products through the GEMM kernel, differentiable.
#pragma once

#include "tensor/tensor.h"

namespace dscope {

// [M,K]·[K,N] → [M,N], or batched [B,M,K]·[B,K,N] → [B,M,N]. Transposed views are passed to the GEMM as
// transposed operands, without a copy.
Tensor matmul(const Tensor& a, const Tensor& b);

// y = x · weightᵀ + bias for x [N, in], weight [out, in], bias [out] (bias may be undefined).
// A composite of matmul and add, so its backward comes from theirs.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace dscope
