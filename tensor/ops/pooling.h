// Spatial pooling over NCHW tensors, differentiable.
#pragma once

#include "tensor/tensor.h"

namespace dscope {

struct Pool2dOptions {
  std::int64_t kernel_h = 2, kernel_w = 2;
  std::int64_t stride_h = 2, stride_w = 2;
  std::int64_t padding_h = 0, padding_w = 0;  // max pool pads with −inf, average pool with zeros
};

// Ties in max pooling send the gradient to the first maximum in row-major window order.
Tensor max_pool2d(const Tensor& input, const Pool2dOptions& options);
// Padding counts towards the divisor (count_include_pad, PyTorch's default).
Tensor avg_pool2d(const Tensor& input, const Pool2dOptions& options);
// [N, C, H, W] → [N, C]: the mean over each channel's H×W plane.
Tensor global_avg_pool2d(const Tensor& input);

}  // namespace dscope
