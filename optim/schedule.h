// Learning-rate schedules: the learning rate as a function of the optimizer step.
//
// A schedule holds no state: learning_rate_at(step) depends on the step alone, so a resumed run (which
// restores the step count) continues the schedule exactly, and a schedule can be plotted or tested at any
// step without replaying the ones before. Step 0 is the first update; a training loop calls
// optimizer.set_learning_rate(schedule(step)) before each optimizer.step(). The values equal PyTorch's
// schedulers (StepLR, LinearLR then CosineAnnealingLR, OneCycleLR) stepped once per optimizer step.
//
// Each schedule is a small copyable class, so it can also be passed wherever a std::function<float(int64)>
// is expected (operator() forwards to learning_rate_at). Hyper-parameters are checked in the constructors
// and throw ValueError naming the schedule and the argument.
#pragma once

#include <cstdint>

namespace dscope::optim {

class Schedule {
 public:
  virtual ~Schedule() = default;
  // The learning rate of update `step` (≥ 0; ValueError if negative).
  virtual float learning_rate_at(std::int64_t step) const = 0;
  float operator()(std::int64_t step) const { return learning_rate_at(step); }
};

// The same learning rate at every step.
class ConstantSchedule final : public Schedule {
 public:
  explicit ConstantSchedule(float learning_rate);
  float learning_rate_at(std::int64_t step) const override;

 private:
  float learning_rate_;
};

// base · gamma^⌊step / step_size⌋: multiplied by gamma every step_size steps (PyTorch's StepLR).
class StepDecaySchedule final : public Schedule {
 public:
  StepDecaySchedule(float base_learning_rate, std::int64_t step_size, float gamma);
  float learning_rate_at(std::int64_t step) const override;

 private:
  float base_;
  std::int64_t step_size_;
  float gamma_;
};

// A linear warm-up over warmup_steps from start_factor · base to base, then a half cosine from base down to
// min_learning_rate at total_steps, and min_learning_rate after:
//   step < W:       base · (start_factor + (1 − start_factor) · step / W)
//   W ≤ step ≤ T:   min + (base − min) · (1 + cos(π · (step − W) / (T − W))) / 2
// Warming up lets Adam's moments and batch norm's statistics settle before the largest steps are taken.
// With start_factor > 0 it equals PyTorch's SequentialLR(LinearLR(start_factor, total_iters=W),
// CosineAnnealingLR(T_max=T − W, eta_min=min), milestones=[W]) up to T.
class WarmupCosineSchedule final : public Schedule {
 public:
  WarmupCosineSchedule(float base_learning_rate, std::int64_t total_steps, std::int64_t warmup_steps = 0,
                       float min_learning_rate = 0.0f, float warmup_start_factor = 0.0f);
  float learning_rate_at(std::int64_t step) const override;

 private:
  float base_;
  std::int64_t total_steps_;
  std::int64_t warmup_steps_;
  float min_;
  float start_factor_;
};

// The one-cycle policy (Smith & Topin, 2017) exactly as PyTorch's OneCycleLR computes it with its defaults
// (two phases, cosine annealing): from max / div_factor up to max over the first pct_start of the steps, then
// down to max / div_factor / final_div_factor at step total_steps − 1, where it stays. (PyTorch's momentum
// cycling is not part of it: an optimizer's momentum is fixed here.)
class OneCycleSchedule final : public Schedule {
 public:
  OneCycleSchedule(float max_learning_rate, std::int64_t total_steps, float pct_start = 0.3f,
                   float div_factor = 25.0f, float final_div_factor = 1e4f);
  float learning_rate_at(std::int64_t step) const override;

 private:
  double initial_;  // max / div_factor
  double max_;
  double final_;       // initial / final_div_factor
  double warmup_end_;  // pct_start · total_steps − 1: the step at which the rate peaks (may be fractional)
  std::int64_t total_steps_;
};

}  // namespace dscope::optim
