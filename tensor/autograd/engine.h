// The backward engine: runs the recorded graph in reverse topological order.
//
// Each node runs once, after every node that feeds gradient into it has run; gradients arriving at a node
// from several consumers (a tensor used twice, the diamond of a residual block) are summed first.
#pragma once

#include "tensor/tensor.h"

namespace dscope::autograd {

// Backpropagates from `root`. `grad_root` may be undefined only when root has one element (then it is 1).
void run_backward(const Tensor& root, const Tensor& grad_root, bool retain_graph);

}  // namespace dscope::autograd
