// Weight averaging: an exponential moving average of a model's weights over the steps of training
// (Polyak averaging as used for deep networks: the "EMA model" of Tan & Le's EfficientNet and of timm).
//
// After each optimizer step every average moves a little towards the weights it follows:
//   average ← d · average + (1 − d) · weight,   d = min(decay, (1 + updates) / (10 + updates))
// The second term of the min lets the average follow the weights quickly over the first steps, when the
// random initial weights would otherwise dominate it for thousands of steps (TensorFlow's num_updates rule).
// Batch normalisation's running statistics are averaged with the weights, so that an averaged model is
// consistent; integer buffers (batch-norm's step counter) are left alone.
//
// The averaged network is usually better on held-out data than the weights of its last step, because SGD
// with a high learning rate keeps jumping across a valley and the average sits nearer its floor. The
// trainer evaluates, and the build saves as the chosen model, the averaged weights (apps/lib/trainer.h).
#pragma once

#include <cstdint>
#include <vector>

#include "nn/module.h"

namespace dscope::optim {

class WeightAverage {
 public:
  // Starts the averages at the model's current values. decay must be in [0, 1); 0 follows the weights.
  WeightAverage(const nn::Module& model, double decay);

  // One step of the average (after optimizer.step()).
  void update();
  // Exchanges the model's values with the averages, in O(1) per tensor (their storages are swapped). Call
  // it again to undo. The optimizer updates whatever storage the model holds, so never step while swapped.
  void swap();
  bool swapped() const { return swapped_; }

  // Restarts the averages at the model's current values, as if `updates` steps had been averaged: a
  // resumed run loads the averaged weights into the model, calls this, then loads its last weights.
  void reset_from_model(std::int64_t updates);
  std::int64_t updates() const { return updates_; }
  double decay() const { return decay_; }

 private:
  std::vector<Tensor> weights_;   // the model's own tensors
  std::vector<Tensor> averages_;  // one dense tensor each, on the same device
  double decay_;
  std::int64_t updates_ = 0;
  bool swapped_ = false;
};

}  // namespace dscope::optim
