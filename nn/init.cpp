#include "nn/init.h"

#include <cmath>

namespace dscope::nn {

std::int64_t fan_in(const Shape& shape) {
  DSCOPE_CHECK(shape.rank() >= 2, ShapeError, "init: fan_in needs a weight of rank 2 or more, got ", shape);
  return shape.numel() / shape[0];
}

std::int64_t fan_out(const Shape& shape) {
  DSCOPE_CHECK(shape.rank() >= 2, ShapeError, "init: fan_out needs a weight of rank 2 or more, got ", shape);
  return shape.numel() / shape[1];
}

Tensor kaiming_normal(const Shape& shape, FanMode mode, Generator& generator) {
  const auto fan = static_cast<float>(mode == FanMode::In ? fan_in(shape) : fan_out(shape));
  return Tensor::randn(shape, generator, 0.0f, std::sqrt(2.0f / fan));
}

Tensor fan_in_uniform(const Shape& shape, std::int64_t fan, Generator& generator) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(fan));
  return Tensor::uniform(shape, generator, -bound, bound);
}

}  // namespace dscope::nn
