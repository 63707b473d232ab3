// Learning-rate schedules (see schedule.h). Each is evaluated in double from its closed form and rounded to
// float once, so a rate does not drift with the step count as a schedule that multiplies step by step would.
#include "optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "optim/optimizer.h"

namespace dscope::optim {
namespace {

void check_step(std::int64_t step, const char* schedule) {
  DSCOPE_CHECK(step >= 0, ValueError, schedule, ": step must be >= 0, got ", step);
}

// From `start` (fraction 0) to `end` (fraction 1) along half a cosine.
double cosine_between(double start, double end, double fraction) {
  return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * fraction) + 1.0);
}

}  // namespace

ConstantSchedule::ConstantSchedule(float learning_rate) : learning_rate_(learning_rate) {
  check_non_negative(learning_rate, "ConstantSchedule", "learning rate");
}

float ConstantSchedule::learning_rate_at(std::int64_t step) const {
  check_step(step, "ConstantSchedule");
  return learning_rate_;
}

StepDecaySchedule::StepDecaySchedule(float base_learning_rate, std::int64_t step_size, float gamma)
    : base_(base_learning_rate), step_size_(step_size), gamma_(gamma) {
  check_non_negative(base_learning_rate, "StepDecaySchedule", "base learning rate");
  check_non_negative(gamma, "StepDecaySchedule", "gamma");
  DSCOPE_CHECK(step_size > 0, ValueError, "StepDecaySchedule: step_size must be > 0, got ", step_size);
}

float StepDecaySchedule::learning_rate_at(std::int64_t step) const {
  check_step(step, "StepDecaySchedule");
  const auto decays = static_cast<double>(step / step_size_);
  return static_cast<float>(static_cast<double>(base_) * std::pow(static_cast<double>(gamma_), decays));
}

WarmupCosineSchedule::WarmupCosineSchedule(float base_learning_rate, std::int64_t total_steps,
                                           std::int64_t warmup_steps, float min_learning_rate,
                                           float warmup_start_factor)
    : base_(base_learning_rate),
      total_steps_(total_steps),
      warmup_steps_(warmup_steps),
      min_(min_learning_rate),
      start_factor_(warmup_start_factor) {
  const char* name = "WarmupCosineSchedule";
  check_non_negative(base_learning_rate, name, "base learning rate");
  check_non_negative(min_learning_rate, name, "minimum learning rate");
  DSCOPE_CHECK(min_learning_rate <= base_learning_rate, ValueError, name, ": minimum learning rate ",
               min_learning_rate, " is above the base learning rate ", base_learning_rate);
  DSCOPE_CHECK(warmup_steps >= 0 && warmup_steps < total_steps, ValueError, name, ": warm-up steps (",
               warmup_steps, ") must be in [0, total steps) with total steps ", total_steps);
  DSCOPE_CHECK(warmup_start_factor >= 0.0f && warmup_start_factor <= 1.0f, ValueError, name,
               ": warm-up start factor must be in [0, 1], got ", warmup_start_factor);
}

float WarmupCosineSchedule::learning_rate_at(std::int64_t step) const {
  check_step(step, "WarmupCosineSchedule");
  const double base = base_;
  if (step < warmup_steps_) {
    const double start = start_factor_;
    return static_cast<float>(
        base * (start + (1.0 - start) * static_cast<double>(step) / static_cast<double>(warmup_steps_)));
  }
  const double fraction = std::min(
      1.0, static_cast<double>(step - warmup_steps_) / static_cast<double>(total_steps_ - warmup_steps_));
  return static_cast<float>(cosine_between(base, min_, fraction));
}

OneCycleSchedule::OneCycleSchedule(float max_learning_rate, std::int64_t total_steps, float pct_start,
                                   float div_factor, float final_div_factor)
    : total_steps_(total_steps) {
  const char* name = "OneCycleSchedule";
  check_non_negative(max_learning_rate, name, "maximum learning rate");
  DSCOPE_CHECK(total_steps >= 2, ValueError, name, ": total steps must be >= 2, got ", total_steps);
  DSCOPE_CHECK(pct_start > 0.0f && pct_start < 1.0f, ValueError, name, ": pct_start must be in (0, 1), got ",
               pct_start);
  DSCOPE_CHECK(std::isfinite(div_factor) && div_factor > 0.0f, ValueError, name,
               ": div_factor must be finite and > 0, got ", div_factor);
  DSCOPE_CHECK(std::isfinite(final_div_factor) && final_div_factor > 0.0f, ValueError, name,
               ": final_div_factor must be finite and > 0, got ", final_div_factor);
  max_ = max_learning_rate;
  initial_ = max_ / static_cast<double>(div_factor);
  final_ = initial_ / static_cast<double>(final_div_factor);
  warmup_end_ = static_cast<double>(pct_start) * static_cast<double>(total_steps) - 1.0;
  DSCOPE_CHECK(warmup_end_ > 0.0 && warmup_end_ < static_cast<double>(total_steps - 1), ValueError, name,
               ": the rise must last more than one step and end before the last: pct_start ", pct_start,
               " of ", total_steps, " steps peaks at step ", warmup_end_);
}

float OneCycleSchedule::learning_rate_at(std::int64_t step) const {
  check_step(step, "OneCycleSchedule");
  const auto at = static_cast<double>(std::min(step, total_steps_ - 1));
  // PyTorch's phases: rise over [0, warmup_end], fall over [warmup_end, total − 1]; the fall's fraction is
  // measured from warmup_end (not warmup_end + 1), as there.
  if (at <= warmup_end_) return static_cast<float>(cosine_between(initial_, max_, at / warmup_end_));
  const double fall_length = static_cast<double>(total_steps_ - 1) - warmup_end_;
  return static_cast<float>(cosine_between(max_, final_, (at - warmup_end_) / fall_length));
}

}  // namespace dscope::optim
