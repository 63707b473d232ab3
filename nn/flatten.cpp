#include "nn/flatten.h"

namespace dscope::nn {

Tensor Flatten::forward(const Tensor& input) {
  DSCOPE_CHECK(input.rank() >= 2, ShapeError, "Flatten: needs a batch axis and at least one more, got shape ",
               input.shape());
  return input.flatten(1);
}

}  // namespace dscope::nn
