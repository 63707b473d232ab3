// Gradient clipping by global norm (see clip.h).
#include "optim/clip.h"

#include <cmath>

#include "kernels/elementwise.h"
#include "kernels/optimizer_update.h"
#include "tensor/dispatch.h"

namespace dscope::optim {

float clip_grad_norm(const std::vector<Tensor>& parameters, float max_norm) {
  DSCOPE_CHECK(std::isfinite(max_norm) && max_norm > 0.0f, ValueError,
               "clip_grad_norm: max_norm must be finite and > 0, got ", max_norm);
  std::vector<Tensor> grads;
  double total_squares = 0.0;
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    DSCOPE_CHECK(parameters[i].defined(), ValueError, "clip_grad_norm: parameter ", i, " is undefined");
    const Tensor grad = parameters[i].grad();
    if (!grad.defined()) continue;
    DSCOPE_CHECK(grad.dtype() == DType::Float32 && grad.is_contiguous(), ValueError, "clip_grad_norm: the ",
                 "gradient of parameter ", i, " ", grad.shape(), " must be dense float32");
    double squares = 0.0;
    DSCOPE_DISPATCH(grad.device(), sum_of_squares, grad.numel(), grad.data<float>(), &squares);
    total_squares += squares;
    grads.push_back(grad);
  }
  const auto total_norm = static_cast<float>(std::sqrt(total_squares));
  const float scale = max_norm / (total_norm + 1e-6f);
  if (scale < 1.0f)
    for (const Tensor& grad : grads)
      DSCOPE_DISPATCH(grad.device(), mul_scalar, grad.numel(), grad.data<float>(), scale, grad.data<float>());
  return total_norm;
}

}  // namespace dscope::optim
