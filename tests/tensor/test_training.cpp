// End to end: a tiny residual convnet built from raw ops overfits a handful of images within a fixed
// number of steps. This exercises every op's backward together, as training does, and catches a
// gradient that is right in isolation but wired wrongly in a graph.
#include <gtest/gtest.h>

#include <cmath>

#include "tensor/ops/all.h"

namespace dscope {
namespace {

TEST(Training, TinyResidualConvnetOverfitsEightImages) {
  Generator generator(21);
  const Tensor images = Tensor::randn({8, 3, 8, 8}, generator);
  const Tensor labels = Tensor::from_int64({0, 1, 2, 0, 1, 2, 0, 1}, {8});

  auto parameter = [&](const Shape& shape, float stddev) {
    Tensor p = stddev == 0.0f ? Tensor::zeros(shape) : Tensor::randn(shape, generator, 0.0f, stddev);
    p.set_requires_grad(true);
    return p;
  };
  Tensor stem = parameter({8, 3, 3, 3}, std::sqrt(2.0f / 27.0f));
  Tensor gamma = Tensor::ones({8}), beta = parameter({8}, 0.0f);
  gamma.set_requires_grad(true);
  Tensor block = parameter({8, 8, 3, 3}, std::sqrt(2.0f / 72.0f));
  Tensor fc = parameter({3, 8}, 0.3f), fc_bias = parameter({3}, 0.0f);
  const std::vector<Tensor> parameters = {stem, gamma, beta, block, fc, fc_bias};

  Conv2dOptions same;
  same.padding_h = same.padding_w = 1;
  auto loss_of = [&] {
    Tensor x =
        relu(batch_norm2d(conv2d(images, stem, Tensor(), same), gamma, beta, Tensor(), Tensor(), true));
    x = relu(x + conv2d(x, block, Tensor(), same));  // the residual diamond
    x = max_pool2d(x, Pool2dOptions{});
    return cross_entropy(linear(global_avg_pool2d(x), fc, fc_bias), labels);
  };

  const float initial = loss_of().item<float>();
  float final_loss = initial;
  for (int step = 0; step < 150; ++step) {
    for (Tensor p : parameters)
      p.set_grad(Tensor());
    const Tensor loss = loss_of();
    loss.backward();
    NoGradGuard no_grad;
    for (Tensor p : parameters)
      copy_elements(p - p.grad() * 0.1f, p);
    final_loss = loss.item<float>();
  }
  EXPECT_LT(final_loss, 0.2f * initial) << "initial loss " << initial;
}

}  // namespace
}  // namespace dscope
