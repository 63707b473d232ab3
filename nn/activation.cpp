#include "nn/activation.h"

#include "tensor/ops/activation.h"

namespace dscope::nn {

Tensor ReLU::forward(const Tensor& input) {
  return relu(input);
}

}  // namespace dscope::nn
