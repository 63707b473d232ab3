#include "nn/dropout.h"

#include "tensor/ops/dropout.h"

namespace dscope::nn {

Dropout::Dropout(float p, std::uint64_t seed) : p_(p), generator_(seed) {
  DSCOPE_CHECK(p >= 0.0f && p < 1.0f, ValueError, "Dropout: p must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& input) {
  return dropout(input, p_, is_training(), generator_);
}

std::string Dropout::describe() const {
  return detail::concat("Dropout(p=", p_, ")");
}

}  // namespace dscope::nn
