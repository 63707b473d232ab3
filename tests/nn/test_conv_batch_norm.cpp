// conv_batch_norm: folded for inference (evaluation mode, no graph) it gives what the convolution and the
// batch norm give one after the other, for a conv with and without a bias, with a residual added and
// clamped (a block's last layer), and for whole ResNets of both block kinds with trained-looking
// statistics; in training, or with gradients wanted, it does not fold.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "nn/conv_batch_norm.h"
#include "nn/resnet.h"
#include "tensor/autograd/grad_mode.h"
#include "tensor/ops/activation.h"
#include "tests/support/compare.h"

namespace dscope {
namespace {

// Gives every batch norm of `model` statistics and an affine map far from the defaults (mean 0, variance
// 1, γ 1, β 0), so that a fold that dropped any of them would show.
void randomise_batch_norms(nn::Module& model, Generator& generator) {
  for (const auto& [name, tensor] : model.state_dict()) {
    if (tensor.dtype() != DType::Float32) continue;
    const bool variance = name.find("running_var") != std::string::npos;
    const bool statistic = variance || name.find("running_mean") != std::string::npos ||
                           name.find("bn") != std::string::npos ||
                           name.find("downsample.1") != std::string::npos;
    if (!statistic) continue;
    float* values = tensor.data<float>();
    for (std::int64_t i = 0; i < tensor.numel(); ++i)
      values[i] = variance ? 0.2f + generator.uniform() * 2.0f : generator.normal() * 0.5f;
  }
}

TEST(ConvBatchNorm, FoldedEqualsTheTwoLayersForAConvWithAndWithoutBias) {
  for (const bool with_bias : {false, true}) {
    Generator generator(11);
    nn::Conv2d conv(nn::Conv2dSpec{3, 5, 3, 2, 1, 1, with_bias}, generator);
    nn::BatchNorm2d norm(5);
    if (with_bias) conv.bias = Tensor::randn({5}, generator);  // not zero, so that it must be folded in
    randomise_batch_norms(norm, generator);
    norm.eval();
    const Tensor input = Tensor::randn({2, 3, 9, 7}, generator);
    const std::vector<float> separate = norm.forward(conv.forward(input)).to_vector<float>();
    NoGradGuard no_grad;
    const std::vector<float> folded = nn::conv_batch_norm(conv, norm, input).to_vector<float>();
    EXPECT_TRUE(testing::all_close(folded, separate, 1e-5, 1e-4, with_bias ? "conv with bias" : "conv"));
  }
}

TEST(ConvBatchNorm, FoldedWithAResidualEqualsTheLayersThenAddRelu) {
  Generator generator(14);
  nn::Conv2d conv(nn::Conv2dSpec{4, 6, 3, 1, 1, 1, false}, generator);
  nn::BatchNorm2d norm(6);
  randomise_batch_norms(norm, generator);
  norm.eval();
  const Tensor input = Tensor::randn({2, 4, 9, 7}, generator),
               residual = Tensor::randn({2, 6, 9, 7}, generator);
  const std::vector<float> separate =
      add_relu(norm.forward(conv.forward(input)), residual).to_vector<float>();
  NoGradGuard no_grad;
  const std::vector<float> folded =
      nn::conv_batch_norm_add_relu(conv, norm, input, residual).to_vector<float>();
  EXPECT_TRUE(testing::all_close(folded, separate, 1e-5, 1e-4, "conv + batch norm + residual + ReLU"));
}

TEST(ConvBatchNorm, FoldedResNetsGiveTheSameLogits) {
  for (const nn::BlockKind block : {nn::BlockKind::Basic, nn::BlockKind::Bottleneck}) {
    nn::ResNetConfig config = nn::resnet_config(8, 4);
    config.block = block;
    config.stage_widths = {4, 8, 8};
    nn::ResNet model(config);
    Generator generator(12);
    randomise_batch_norms(model, generator);
    model.eval();
    const Tensor images = Tensor::randn({3, 3, 16, 16}, generator);
    const std::vector<float> separate = model.forward(images).to_vector<float>();  // a graph is recorded
    NoGradGuard no_grad;
    const std::vector<float> folded = model.forward(images).to_vector<float>();
    EXPECT_TRUE(testing::all_close(folded, separate, 1e-4, 1e-4,
                                   block == nn::BlockKind::Basic ? "basic blocks" : "bottlenecks"));
  }
}

TEST(ConvBatchNorm, TrainingDoesNotFold) {
  // In training the batch statistics normalise, and the running statistics must be updated: the pair runs
  // as two layers even without a graph.
  Generator generator(13);
  nn::Conv2d conv(nn::Conv2dSpec{2, 3, 3, 1, 1, 1, false}, generator);
  nn::BatchNorm2d norm(3);
  const Tensor input = Tensor::randn({4, 2, 5, 5}, generator);
  NoGradGuard no_grad;
  const std::vector<float> output = nn::conv_batch_norm(conv, norm, input).to_vector<float>();
  EXPECT_EQ(norm.num_batches_tracked.data<std::int64_t>()[0], 1);
  EXPECT_NE(norm.running_mean.to_vector<float>(), std::vector<float>(3, 0.0f));
  double mean = 0.0;
  for (float value : output)
    mean += value;
  EXPECT_NEAR(mean / static_cast<double>(output.size()), 0.0, 1e-4);  // normalised by the batch
}

}  // namespace
}  // namespace dscope
