// A convolution followed by batch norm, the pair every ResNet layer is made of, with the batch norm folded
// into the convolution when the pair runs for inference.
//
// In evaluation mode batch norm is an affine map per channel, y = x · scale + shift with
// scale = γ / √(running_var + ε) and shift = β − running_mean · scale. After a convolution it moves into the
// convolution: weights w[k] · scale[k] and bias b[k] · scale[k] + shift[k]. The folded layer makes one pass
// over its output instead of two (the convolution adds its bias while each output block is still in cache),
// which is the batch norm's whole cost at inference; a ReLU after it is applied by the convolution too
// (conv2d_relu), so conv + batch norm + ReLU is a single pass.
#pragma once

#include "nn/batch_norm2d.h"
#include "nn/conv2d.h"

namespace dscope::nn {

// norm(conv(input)), or with `relu` relu(norm(conv(input))), the ReLU fused into the batch norm's passes
// when it runs as a layer (BatchNorm2d::forward_relu). Folded when the norm is in evaluation mode and no
// graph is being recorded (under a NoGradGuard, as predict and scoring run): the folded weights are computed
// from the current parameters at every call, O(weights) against the convolution's O(weights × positions), so
// nothing cached can go stale. Otherwise (training, or gradients wanted in evaluation mode) the two layers
// run one after the other.
Tensor conv_batch_norm(Conv2d& conv, BatchNorm2d& norm, const Tensor& input, bool relu = false);

// relu(norm(conv(input)) + residual): a residual block's last layer and its shortcut. Folded as above, and
// then the convolution adds the residual and clamps as it writes (conv2d_add_relu), so at inference the
// block's addition costs no pass of its own; otherwise the batch norm adds the residual and clamps in its
// forward pass (BatchNorm2d::forward_add_relu), with no pass of its own either.
Tensor conv_batch_norm_add_relu(Conv2d& conv, BatchNorm2d& norm, const Tensor& input, const Tensor& residual);

}  // namespace dscope::nn
