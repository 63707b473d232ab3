// cuDNN as a reference path for conv2d (DSCOPE_CONV=cudnn, settings.h): the same three passes and contracts
// as kernels/conv2d.h, so one binary can time ours against NVIDIA's. Built only when CMake finds cuDNN
// (DSCOPE_WITH_CUDNN); settings.cu refuses the cudnn backend otherwise.
#pragma once

#include "kernels/conv2d.h"

namespace dscope::kernels::cuda::cudnn {

void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y);
void conv2d_backward_input(const Conv2dGeometry& g, const float* grad_y, const float* w, float* grad_x);
void conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* grad_y, float* grad_w);

}  // namespace dscope::kernels::cuda::cudnn
