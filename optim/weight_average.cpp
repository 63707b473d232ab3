// WeightAverage (see weight_average.h): the average's update runs on the elementwise kernels of the device
// the model lives on.
#include "optim/weight_average.h"

#include <algorithm>
#include <utility>

#include "kernels/elementwise.h"
#include "tensor/autograd/grad_mode.h"
#include "tensor/dispatch.h"

namespace dscope::optim {

WeightAverage::WeightAverage(const nn::Module& model, double decay) : decay_(decay) {
  DSCOPE_CHECK(decay >= 0.0 && decay < 1.0, ValueError, "weight average: decay must be in [0, 1), got ",
               decay);
  for (const auto& [name, tensor] : model.float_state()) {
    DSCOPE_CHECK(tensor.is_contiguous() && tensor.offset() == 0, ValueError, "weight average: '", name,
                 "' is a view, not a tensor of its own");
    weights_.push_back(tensor);
  }
  averages_.resize(weights_.size());
  reset_from_model(0);
}

void WeightAverage::reset_from_model(std::int64_t updates) {
  DSCOPE_CHECK(!swapped_, ValueError, "weight average: reset while the averages are swapped in");
  DSCOPE_CHECK(updates >= 0, ValueError, "weight average: negative update count ", updates);
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < weights_.size(); ++i)
    averages_[i] = dense_copy(weights_[i].detach());
  updates_ = updates;
}

void WeightAverage::update() {
  DSCOPE_CHECK(!swapped_, ValueError, "weight average: update while the averages are swapped in");
  const double warmup = (1.0 + static_cast<double>(updates_)) / (10.0 + static_cast<double>(updates_));
  const auto d = static_cast<float>(std::min(decay_, warmup));
  for (std::size_t i = 0; i < weights_.size(); ++i) {
    const Tensor& weight = weights_[i];
    float* average = averages_[i].data<float>();
    const std::int64_t n = weight.numel();
    DSCOPE_DISPATCH(weight.device(), mul_scalar, n, average, d, average);
    DSCOPE_DISPATCH(weight.device(), axpy, n, 1.0f - d, weight.data<float>(), average);
  }
  ++updates_;
}

void WeightAverage::swap() {
  for (std::size_t i = 0; i < weights_.size(); ++i)
    std::swap(weights_[i].impl()->storage, averages_[i].impl()->storage);
  swapped_ = !swapped_;
}

}  // namespace dscope::optim
