// Gradient clipping by global norm: PyTorch's torch.nn.utils.clip_grad_norm_ (2-norm).
//
// The norm is taken over all gradients together, as if they were one vector, and every gradient is scaled by
// the same factor, so clipping changes the step's length but never its direction. Scaling by
// max_norm / (norm + 1e-6) only when that is below 1 is PyTorch's rule; the 1e-6 keeps a zero norm finite.
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace dscope::optim {

// Scales the gradients of `parameters` in place so that their global 2-norm is at most max_norm (> 0), and
// returns the norm before clipping. Parameters without a gradient are skipped; with none at all the norm
// is 0. The sum of squares is accumulated in double. Throws ValueError for max_norm ≤ 0 or not finite.
float clip_grad_norm(const std::vector<Tensor>& parameters, float max_norm);

}  // namespace dscope::optim
