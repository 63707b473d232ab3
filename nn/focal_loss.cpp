// focal_loss (see focal_loss.h), composed from differentiable ops, so its backward comes from theirs:
//   log p_t       = Σ_c [c = t] · log_softmax(z)_c               (a one-hot mask picks the target column)
//   1 − p_t       = Σ_c [c ≠ t] · softmax(z)_c                   (Note [one minus p_t])
//   (1 − p_t)^γ   = exp(γ · log(1 − p_t + kFloor))               (Note [one minus p_t])
// The masks and α_t are constants built on the host from the targets, which are validated there anyway.
//
// Note [one minus p_t]: writing 1 − exp(log p_t) would cancel catastrophically for confident samples
// (p_t = 0.9999999 rounds to 1 in float32, so the modulating factor and its gradient would become 0 or NaN).
// Summing the other classes' probabilities keeps full relative precision. It can still underflow to 0 when
// one logit leads by more than ~100; log(0) = −inf would then make the backward 0·inf = NaN, so a floor of
// 1e-30 is added. The floor changes the factor by less than float32 rounding whenever 1 − p_t > 1e-23, and
// below that the sample's loss (−log p_t ≈ 1 − p_t) is itself below 1e-23.
#include "nn/focal_loss.h"

#include <vector>

#include "tensor/ops/arithmetic.h"
#include "tensor/ops/checks.h"
#include "tensor/ops/exp_log.h"
#include "tensor/ops/log_softmax.h"
#include "tensor/ops/reduction.h"

namespace dscope::nn {
namespace {

constexpr float kFloor = 1e-30f;

void check_arguments(const Tensor& logits, const Tensor& targets, const FocalLossOptions& options) {
  dscope::detail::check_float(logits, "focal_loss", "logits");
  dscope::detail::check_rank(logits, 2, "focal_loss", "logits");
  dscope::detail::check_defined(targets, "focal_loss", "targets");
  DSCOPE_CHECK(targets.dtype() == DType::Int64, DTypeError,
               "focal_loss: targets must be int64 class indices but are ", dtype_name(targets.dtype()),
               " (logits ", logits.shape(), ", targets ", targets.shape(), ")");
  DSCOPE_CHECK(targets.rank() == 1 && targets.size(0) == logits.size(0), ShapeError, "focal_loss: targets ",
               targets.shape(), " do not match logits ", logits.shape(), " (expected [", logits.size(0),
               "])");
  dscope::detail::check_same_device(logits, targets, "focal_loss");
  DSCOPE_CHECK(options.gamma >= 0.0f, ValueError, "focal_loss: gamma must be >= 0 but is ", options.gamma);
  if (options.alpha.defined()) {
    dscope::detail::check_float(options.alpha, "focal_loss", "alpha");
    DSCOPE_CHECK(options.alpha.rank() == 1 && options.alpha.size(0) == logits.size(1), ShapeError,
                 "focal_loss: alpha ", options.alpha.shape(), " does not match logits ", logits.shape(),
                 " (expected [", logits.size(1), "])");
  }
}

}  // namespace

Tensor focal_loss(const Tensor& logits, const Tensor& targets, const FocalLossOptions& options) {
  check_arguments(logits, targets, options);
  const std::int64_t N = logits.size(0), classes = logits.size(1);
  const std::vector<std::int64_t> labels = targets.to_vector<std::int64_t>();
  const std::vector<float> alpha =
      options.alpha.defined() ? options.alpha.to_vector<float>() : std::vector<float>();
  std::vector<float> is_target(static_cast<std::size_t>(N * classes), 0.0f);
  std::vector<float> alpha_t(static_cast<std::size_t>(N), 1.0f);
  for (std::int64_t i = 0; i < N; ++i) {
    const std::int64_t label = labels[static_cast<std::size_t>(i)];
    DSCOPE_CHECK(label >= 0 && label < classes, ValueError, "focal_loss: targets[", i, "] = ", label,
                 " is outside [0, ", classes, ") (logits ", logits.shape(), ", targets ", targets.shape(),
                 ")");
    is_target[static_cast<std::size_t>(i * classes + label)] = 1.0f;
    if (!alpha.empty()) alpha_t[static_cast<std::size_t>(i)] = alpha[static_cast<std::size_t>(label)];
  }
  const Tensor target_mask = Tensor::from_vector(is_target, {N, classes}).to(logits.device());

  const Tensor log_probabilities = log_softmax(logits, 1);
  Tensor losses = -sum(log_probabilities * target_mask, {1});  // −log p_t, [N]
  if (options.gamma != 0.0f) {
    const Tensor one_minus_p_t = sum(exp(log_probabilities) * (1.0f - target_mask), {1});
    losses = losses * exp(log(one_minus_p_t + kFloor) * options.gamma);
  }
  if (options.alpha.defined()) losses = losses * Tensor::from_vector(alpha_t, {N}).to(logits.device());
  return options.reduction == Reduction::Mean ? mean(losses) : sum(losses);
}

}  // namespace dscope::nn
