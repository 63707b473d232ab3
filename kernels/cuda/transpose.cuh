// Matrix transposes on the GPU, for the layout copies that let the shared tiled kernel copy four values at a
// time (channels-last copies for conv2d.cu, operands turned round for gemm.cu).
//
// Included only by .cu files.
#pragma once

#include "kernels/bfloat16.h"

namespace dscope::kernels::cuda {

// dst[b, j, i] = src[b, i, j] for `matrices` matrices of `rows` × `cols`: row i of matrix b at
// src + (b · rows + i) · src_stride, dst dense. Runs on the current stream; `name` labels launch errors.
void transpose(int matrices, int rows, int cols, int src_stride, const float* src, float* dst,
               const char* name);
// The same from bfloat16 activations (mixed precision), widened to float as they are copied.
void transpose(int matrices, int rows, int cols, int src_stride, const BFloat16* src, float* dst,
               const char* name);

}  // namespace dscope::kernels::cuda
