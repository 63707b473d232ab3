// cross_entropy (see cross_entropy.h).
//
// Forward: the fused kernel (kernels/cross_entropy.h) writes each sample's loss and its target's weight;
// Sum adds the losses, Mean divides that sum by the summed target weights, which is N without class weights
// (PyTorch's convention, label smoothing included). Both sums run through the sum op, which accumulates in
// double. Backward: grad_logits = scale · (softmax · Σq − q) from the same header, where
// scale = grad_loss / denominator stays a one-element tensor, so no value is copied off the device.
// Saves the logits (the backward recomputes softmax from them), the targets and the class weights. Class
// weights get no gradient, as in PyTorch.
#include "tensor/ops/cross_entropy.h"

#include "kernels/cross_entropy.h"
#include "tensor/autograd/grad_mode.h"
#include "tensor/autograd/node.h"
#include "tensor/dispatch.h"
#include "tensor/ops/arithmetic.h"
#include "tensor/ops/checks.h"
#include "tensor/ops/reduction.h"

namespace dscope {
namespace {

void check_arguments(const Tensor& logits, const Tensor& targets, const CrossEntropyOptions& options) {
  detail::check_float(logits, "cross_entropy", "logits");
  detail::check_rank(logits, 2, "cross_entropy", "logits");
  detail::check_defined(targets, "cross_entropy", "targets");
  DSCOPE_CHECK(targets.dtype() == DType::Int64, DTypeError,
               "cross_entropy: targets must be int64 class indices but are ", dtype_name(targets.dtype()),
               " (logits ", logits.shape(), ", targets ", targets.shape(), ")");
  DSCOPE_CHECK(targets.rank() == 1 && targets.size(0) == logits.size(0), ShapeError,
               "cross_entropy: targets ", targets.shape(), " do not match logits ", logits.shape(),
               " (expected [", logits.size(0), "])");
  detail::check_same_device(logits, targets, "cross_entropy");
  const Tensor& weights = options.class_weights;
  if (weights.defined()) {
    detail::check_float(weights, "cross_entropy", "class_weights");
    DSCOPE_CHECK(weights.rank() == 1 && weights.size(0) == logits.size(1), ShapeError,
                 "cross_entropy: class_weights ", weights.shape(), " do not match logits ", logits.shape(),
                 " (expected [", logits.size(1), "])");
    detail::check_same_device(logits, weights, "cross_entropy");
  }
  DSCOPE_CHECK(options.label_smoothing >= 0.0f && options.label_smoothing < 1.0f, ValueError,
               "cross_entropy: label_smoothing must be in [0, 1) but is ", options.label_smoothing);

  // The kernels index rows by target, so every index is checked here, on a host copy when on a device.
  const Tensor host_targets = targets.to(Device::cpu()).contiguous();
  const std::int64_t* values = host_targets.data<std::int64_t>();
  const std::int64_t classes = logits.size(1);
  for (std::int64_t i = 0; i < host_targets.numel(); ++i)
    DSCOPE_CHECK(values[i] >= 0 && values[i] < classes, ValueError, "cross_entropy: targets[", i,
                 "] = ", values[i], " is outside [0, ", classes, ") (logits ", logits.shape(), ", targets ",
                 targets.shape(), ")");
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, const CrossEntropyOptions& options) {
  check_arguments(logits, targets, options);
  kernels::CrossEntropyGeometry g;
  g.N = logits.size(0);
  g.classes = logits.size(1);
  g.label_smoothing = options.label_smoothing;
  const Tensor logits_saved = logits.contiguous().detach();
  const Tensor targets_saved = targets.contiguous().detach();
  const Tensor weights_saved =
      options.class_weights.defined() ? options.class_weights.contiguous().detach() : Tensor();
  const float* weights_data = weights_saved.defined() ? weights_saved.data<float>() : nullptr;

  Tensor losses = Tensor::empty({g.N}, DType::Float32, logits.device());
  Tensor target_weights = Tensor::empty({g.N}, DType::Float32, logits.device());
  DSCOPE_DISPATCH(logits.device(), cross_entropy_forward, g, logits_saved.data<float>(),
                  targets_saved.data<std::int64_t>(), weights_data, losses.data<float>(),
                  target_weights.data<float>());
  Tensor loss, denominator;
  {
    NoGradGuard no_grad;  // the reduction is part of this op's backward below, not a graph of its own
    loss = sum(losses);
    if (options.reduction == Reduction::Mean) {
      denominator = sum(target_weights);
      loss = loss / denominator;
    }
  }

  return autograd::record(
      "cross_entropy", loss, {logits},
      [g, logits_saved, targets_saved, weights_saved,
       denominator](const Tensor& grad_loss) -> autograd::Gradients {
        const Tensor scale = (denominator.defined() ? grad_loss / denominator : grad_loss).contiguous();
        Tensor grad_logits = Tensor::empty({g.N, g.classes}, DType::Float32, logits_saved.device());
        DSCOPE_DISPATCH(logits_saved.device(), cross_entropy_backward, g, logits_saved.data<float>(),
                        targets_saved.data<std::int64_t>(),
                        weights_saved.defined() ? weights_saved.data<float>() : nullptr, scale.data<float>(),
                        grad_logits.data<float>());
        return {grad_logits};
      });
}

}  // namespace dscope
