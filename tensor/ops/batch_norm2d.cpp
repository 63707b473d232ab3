// batch_norm2d (see batch_norm2d.h and kernels/batch_norm2d.h).
//
// weight and bias may each be undefined (PyTorch's affine=False): the kernels then use 1 and 0. The running
// buffers are written in place, so they must be dense; they are state, not graph inputs, and get no gradient.
// Backward saves x, the per-channel mean and inv_std, gamma and beta, not x̂: x̂ would be a new
// activation-sized buffer written by every forward, while x already exists and x̂ is one multiply-add away
// when backward reads x (and, with the fused ReLU, so is the output whose sign masks the gradient). In
// evaluation the saved mean is a copy of running_mean, because a later training step updates the buffer in
// place before this backward may run.
//
// A bfloat16 input (mixed precision, tensor/autocast.h) gives a bfloat16 output, and a bfloat16 input (and
// residual) gradient: the kernels read and write bfloat16 activations and compute in float32, and the saved
// x is the bfloat16 input itself. weight, bias, the statistics and the running buffers are float32 always.
#include "tensor/ops/batch_norm2d.h"

#include <cmath>

#include "kernels/activation.h"
#include "kernels/batch_norm2d.h"
#include "tensor/autograd/node.h"
#include "tensor/dispatch.h"
#include "tensor/ops/activation_type.h"
#include "tensor/ops/checks.h"

namespace dscope {
namespace {

constexpr const char* kOp = "batch_norm2d";

// An optional per-channel vector (weight, bias, running buffer) must be float32 [C] on the input's device.
void check_channel_vector(const Tensor& vector, const Tensor& input, const char* argument) {
  if (!vector.defined()) return;
  detail::check_float(vector, kOp, argument);
  detail::check_same_device(vector, input, kOp);
  DSCOPE_CHECK(vector.shape() == Shape{input.size(1)}, ShapeError, kOp, ": ", argument, " must have shape [",
               input.size(1), "] (one value per channel of input ", input.shape(), ") but has shape ",
               vector.shape());
}

// The data of an optional tensor, or null for an undefined one (the kernels' "absent" value).
template <typename T = float>
T* optional_data(const Tensor& x) {
  return x.defined() ? x.data<T>() : nullptr;
}

// What a batch norm's backward reads, saved by its forward (see the top of this file), and which gradients
// its graph node owes.
struct SavedBatchNorm {
  kernels::BatchNorm2dGeometry g;
  bool training = false;
  Tensor x, mean, inv_std, gamma, beta;
  bool needs_grad_x = false, needs_grad_gamma = false, needs_grad_beta = false;

  // grad_x, grad_gamma and grad_beta (each undefined where not needed) from grad, the dense gradient of the
  // batch norm's output (with g.relu, of the ReLU's after it) in x's dtype.
  autograd::Gradients backward(const Tensor& grad) const {
    const Device on = grad.device();
    const Tensor grad_x = needs_grad_x ? Tensor::empty(x.shape(), x.dtype(), on) : Tensor();
    const Tensor grad_gamma = needs_grad_gamma ? Tensor::empty({g.C}, DType::Float32, on) : Tensor();
    const Tensor grad_beta = needs_grad_beta ? Tensor::empty({g.C}, DType::Float32, on) : Tensor();
    detail::with_activation_type(x.dtype(), [&](auto element) {
      using T = decltype(element);
      DSCOPE_DISPATCH(on, batch_norm2d_backward, g, training, grad.data<T>(), x.data<T>(), mean.data<float>(),
                      inv_std.data<float>(), optional_data(gamma), optional_data(beta),
                      optional_data<T>(grad_x), optional_data(grad_gamma), optional_data(grad_beta));
    });
    return {grad_x, grad_gamma, grad_beta};
  }
};

// The graph node of relu(batch_norm2d(x) + residual), whose output y the forward has written: the ReLU's
// mask comes from y (it depends on the residual too, so it cannot be recomputed from x), and the batch
// norm's backward then runs without its fused ReLU on the masked gradient, which is also the residual's.
Tensor record_with_residual(SavedBatchNorm saved, const Tensor& y, const Tensor& input, const Tensor& weight,
                            const Tensor& bias, const Tensor& residual) {
  saved.g.relu = false;
  const Tensor y_saved = y.detach();
  return autograd::record("batch_norm2d_add_relu", y, {input, weight, bias, residual},
                          [saved, y_saved](const Tensor& grad_y) -> autograd::Gradients {
                            const Tensor grad = dense_as(grad_y, y_saved.dtype());
                            Tensor masked = Tensor::empty(y_saved.shape(), y_saved.dtype(), grad.device());
                            detail::with_activation_type(y_saved.dtype(), [&](auto element) {
                              using T = decltype(element);
                              DSCOPE_DISPATCH(grad.device(), relu_backward, grad.numel(), grad.data<T>(),
                                              y_saved.data<T>(), masked.data<T>());
                            });
                            autograd::Gradients gradients = saved.backward(masked);
                            gradients.push_back(masked);
                            return gradients;
                          });
}

// batch_norm2d, plus `residual` when defined, followed by a ReLU in the same kernels when `relu`
// (kernels/batch_norm2d.h).
Tensor batch_norm2d_maybe_relu(const Tensor& input, const Tensor& weight, const Tensor& bias,
                               const Tensor& running_mean, const Tensor& running_var, const Tensor& residual,
                               bool training, float momentum, float eps, bool relu) {
  detail::check_floating(input, kOp, "input");
  detail::check_rank(input, 4, kOp, "input");
  if (residual.defined()) {
    detail::check_floating(residual, kOp, "residual");
    detail::check_same_device(residual, input, kOp);
    DSCOPE_CHECK(residual.shape() == input.shape(), ShapeError, kOp, ": residual ", residual.shape(),
                 " must have the shape of input ", input.shape());
    DSCOPE_CHECK(residual.dtype() == input.dtype(), DTypeError, kOp, ": residual is ",
                 dtype_name(residual.dtype()), " but input is ", dtype_name(input.dtype()), " (shape ",
                 input.shape(), ")");
  }
  check_channel_vector(weight, input, "weight");
  check_channel_vector(bias, input, "bias");
  check_channel_vector(running_mean, input, "running_mean");
  check_channel_vector(running_var, input, "running_var");
  DSCOPE_CHECK(running_mean.defined() == running_var.defined(), ValueError, kOp,
               ": running_mean and running_var must be both defined or both undefined (input ", input.shape(),
               ")");
  DSCOPE_CHECK(
      training || running_mean.defined(), ValueError, kOp,
      ": evaluation mode normalises with running_mean and running_var, but they are undefined (input ",
      input.shape(), ")");
  DSCOPE_CHECK(!running_mean.defined() || (running_mean.is_contiguous() && running_var.is_contiguous()),
               ValueError, kOp,
               ": running_mean and running_var are updated in place and must be dense (input ", input.shape(),
               ")");
  DSCOPE_CHECK(momentum >= 0.0f && momentum <= 1.0f, ValueError, kOp, ": momentum must be in [0, 1] but is ",
               momentum, " (input ", input.shape(), ")");
  DSCOPE_CHECK(eps > 0.0f && std::isfinite(eps), ValueError, kOp, ": eps must be positive and finite but is ",
               eps, " (input ", input.shape(), ")");

  kernels::BatchNorm2dGeometry g;
  g.N = input.size(0), g.C = input.size(1), g.H = input.size(2), g.W = input.size(3);
  g.relu = relu;
  DSCOPE_CHECK(!training || g.count() > 1, ValueError, kOp,
               ": training needs more than one value per channel to estimate a variance, but input ",
               input.shape(), " has ", g.count());

  const Device device = input.device();
  const Tensor x = dense_as(input, input.dtype());
  Tensor mean = Tensor::empty({g.C}, DType::Float32, device);
  Tensor inv_std = Tensor::empty({g.C}, DType::Float32, device);
  if (training) {
    const Tensor variance = Tensor::empty({g.C}, DType::Float32, device);
    detail::with_activation_type(x.dtype(), [&](auto element) {
      using T = decltype(element);
      DSCOPE_DISPATCH(device, batch_norm2d_statistics, g, x.data<T>(), mean.data<float>(),
                      variance.data<float>());
    });
    if (running_mean.defined())
      DSCOPE_DISPATCH(device, batch_norm2d_update_running_statistics, g, momentum, mean.data<float>(),
                      variance.data<float>(), running_mean.data<float>(), running_var.data<float>());
    DSCOPE_DISPATCH(device, batch_norm2d_inverse_std, g.C, eps, variance.data<float>(),
                    inv_std.data<float>());
  } else {
    mean = dense_copy(running_mean);
    DSCOPE_DISPATCH(device, batch_norm2d_inverse_std, g.C, eps, running_var.data<float>(),
                    inv_std.data<float>());
  }
  const Tensor gamma = weight.defined() ? dense_as(weight, DType::Float32) : Tensor();
  const Tensor beta = bias.defined() ? dense_as(bias, DType::Float32) : Tensor();
  const Tensor y = Tensor::empty(input.shape(), input.dtype(), device);
  const Tensor added = residual.defined() ? dense_as(residual, residual.dtype()) : Tensor();
  detail::with_activation_type(x.dtype(), [&](auto element) {
    using T = decltype(element);
    DSCOPE_DISPATCH(device, batch_norm2d_forward, g, x.data<T>(), mean.data<float>(), inv_std.data<float>(),
                    optional_data(gamma), optional_data(beta), optional_data<T>(added), y.data<T>());
  });
  // With the fused ReLU the backward masks the gradient where the output was zero, which it recomputes from
  // x (kernels/batch_norm2d.h), so it keeps beta and not the output.
  const SavedBatchNorm saved{g,
                             training,
                             x,
                             mean,
                             inv_std,
                             gamma,
                             beta,
                             input.requires_grad(),
                             weight.defined() && weight.requires_grad(),
                             bias.defined() && bias.requires_grad()};
  if (residual.defined()) return record_with_residual(saved, y, input, weight, bias, residual);
  return autograd::record(relu ? "batch_norm2d_relu" : kOp, y, {input, weight, bias},
                          [saved](const Tensor& grad_y) -> autograd::Gradients {
                            return saved.backward(dense_as(grad_y, saved.x.dtype()));
                          });
}

}  // namespace

Tensor batch_norm2d(const Tensor& input, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                    const Tensor& running_var, bool training, float momentum, float eps) {
  return batch_norm2d_maybe_relu(input, weight, bias, running_mean, running_var, Tensor(), training, momentum,
                                 eps, false);
}

Tensor batch_norm2d_relu(const Tensor& input, const Tensor& weight, const Tensor& bias,
                         const Tensor& running_mean, const Tensor& running_var, bool training, float momentum,
                         float eps) {
  return batch_norm2d_maybe_relu(input, weight, bias, running_mean, running_var, Tensor(), training, momentum,
                                 eps, true);
}

Tensor batch_norm2d_add_relu(const Tensor& input, const Tensor& weight, const Tensor& bias,
                             const Tensor& running_mean, const Tensor& running_var, const Tensor& residual,
                             bool training, float momentum, float eps) {
  DSCOPE_CHECK(residual.defined(), ValueError, "batch_norm2d_add_relu: the residual is undefined (input ",
               input.shape(), ")");
  return batch_norm2d_maybe_relu(input, weight, bias, running_mean, running_var, residual, training, momentum,
                                 eps, true);
}

}  // namespace dscope
