// 2-D convolution (cross-correlation, as in every framework), differentiable in input, weight and bias.
#pragma once

#include "tensor/tensor.h"

namespace dscope {

struct Conv2dOptions {
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t padding_h = 0, padding_w = 0;  // zeros added on each side
  std::int64_t dilation_h = 1, dilation_w = 1;
};

// input [N, C, H, W], weight [K, C, R, S], bias [K] or undefined → [N, K, P, Q] with
// P = (H + 2·padding_h − dilation_h·(R−1) − 1) / stride_h + 1, and Q likewise.
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(),
              const Conv2dOptions& options = {});

// relu(conv2d(input, weight, bias, options)). Where no graph is recorded (no argument requires a gradient, or
// under a NoGradGuard, as in inference) the CPU kernels clamp each output as they write it, which saves a
// pass over the output; otherwise, and on CUDA, it is conv2d followed by relu.
Tensor conv2d_relu(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(),
                   const Conv2dOptions& options = {});

// relu(conv2d(input, weight, bias, options) + residual), `residual` of the output's shape: a ResNet block's
// last convolution and its shortcut. Fused like conv2d_relu (the CPU kernels add the residual and clamp as
// they write each output) where no graph is recorded; otherwise add_relu(conv2d(...), residual). ShapeError
// when the residual's shape is not the output's.
Tensor conv2d_add_relu(const Tensor& input, const Tensor& weight, const Tensor& bias, const Tensor& residual,
                       const Conv2dOptions& options = {});

}  // namespace dscope
