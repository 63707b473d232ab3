// The ResNet family: output shapes for every depth and both stems, parameter counts and state-dict names
// identical to torchvision's (so weights move between the two by name), zero-init of the residual branches,
// weights as a function of the seed, and the end-to-end check that a ResNet-8 can fit a batch of random
// images with random labels perfectly, which needs every layer's forward and backward to be right together.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "nn/resnet.h"
#include "optim/sgd.h"
#include "tensor/allocator.h"
#include "tensor/ops/all.h"

namespace dscope {
namespace {

using nn::ResNet;
using nn::StemKind;

std::vector<std::string> parameter_names(const ResNet& model) {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : model.named_parameters())
    names.push_back(name);
  return names;
}

// The index of the largest logit in each row.
std::vector<std::int64_t> predictions(const Tensor& logits) {
  const std::vector<float> values = logits.to_vector<float>();
  const std::int64_t classes = logits.size(1);
  std::vector<std::int64_t> predicted;
  for (auto row = values.begin(); row != values.end(); row += classes)
    predicted.push_back(std::max_element(row, row + classes) - row);
  return predicted;
}

// n labels drawn uniformly from the 7 classes.
std::vector<std::int64_t> random_labels(std::size_t n, Generator& generator) {
  std::vector<std::int64_t> labels(n);
  for (std::int64_t& label : labels)
    label = static_cast<std::int64_t>(generator.below(7));
  return labels;
}

struct ShapeCase {
  int depth;
  StemKind stem;
  float width_multiplier;
  std::int64_t image_size;  // small enough that the last stage still has a pixel: 8, or 32 with the max pool
};

TEST(ResNet, EveryDepthAndStemGivesLogitsPerImage) {
  const std::vector<ShapeCase> cases = {
      {8, StemKind::Small, 1.0f, 8},   {8, StemKind::ImageNet, 1.0f, 16},
      {14, StemKind::Small, 1.0f, 8},  {14, StemKind::ImageNet, 1.0f, 16},
      {18, StemKind::Small, 0.25f, 8}, {18, StemKind::ImageNet, 0.25f, 32},
      {34, StemKind::Small, 0.25f, 8}, {34, StemKind::ImageNet, 0.25f, 32},
      {50, StemKind::Small, 0.25f, 8}, {50, StemKind::ImageNet, 0.25f, 32},
  };
  Generator generator(1);
  for (const ShapeCase& c : cases) {
    ResNet model(nn::resnet_config(c.depth, 5, c.stem, c.width_multiplier));
    const std::string at = model.describe();
    EXPECT_EQ(at.rfind("ResNet-" + std::to_string(c.depth) + "(", 0), 0u) << at;
    const Tensor logits = model(Tensor::randn({2, 3, c.image_size, c.image_size}, generator));
    EXPECT_EQ(logits.shape(), Shape({2, 5})) << at;
    for (float value : logits.to_vector<float>())
      EXPECT_TRUE(std::isfinite(value)) << at;
  }
}

TEST(ResNet, WidthMultiplierScalesEveryStage) {
  ResNet model(nn::resnet_config(50, 10, StemKind::Small, 0.25f));
  const std::map<std::string, Tensor> state = model.state_dict();
  EXPECT_EQ(state.at("conv1.weight").shape(), Shape({16, 3, 3, 3}));
  EXPECT_EQ(state.at("layer1.0.conv3.weight").shape(), Shape({64, 16, 1, 1}));  // Bottleneck: 4× out
  EXPECT_EQ(state.at("layer4.2.conv2.weight").shape(), Shape({128, 128, 3, 3}));
  EXPECT_EQ(state.at("fc.weight").shape(), Shape({10, 512}));
}

TEST(ResNet, ParameterCountsEqualTorchvisions) {
  // torchvision.models.resnet18/34/50(num_classes=1000): sum(p.numel() for p in model.parameters()).
  EXPECT_EQ(ResNet(nn::resnet_config(18, 1000, StemKind::ImageNet)).parameter_count(), 11'689'512);
  EXPECT_EQ(ResNet(nn::resnet_config(34, 1000, StemKind::ImageNet)).parameter_count(), 21'797'672);
  EXPECT_EQ(ResNet(nn::resnet_config(50, 1000, StemKind::ImageNet)).parameter_count(), 25'557'032);
}

TEST(ResNet, StateDictKeysAreTorchvisions) {
  const ResNet model(nn::resnet_config(18, 1000, StemKind::ImageNet, 0.25f));
  const std::map<std::string, Tensor> state = model.state_dict();
  // torchvision's resnet18 has 62 parameters and 60 buffers (20 batch norms × 3).
  EXPECT_EQ(model.named_parameters().size(), 62u);
  EXPECT_EQ(state.size(), 122u);
  for (const std::string key :
       {"conv1.weight", "bn1.weight", "bn1.num_batches_tracked", "layer1.0.conv1.weight", "layer1.1.bn2.bias",
        "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_mean", "layer3.1.conv2.weight",
        "layer4.0.downsample.1.weight", "layer4.1.bn2.running_var", "fc.weight", "fc.bias"})
    EXPECT_EQ(state.count(key), 1u) << "no " << key;
  EXPECT_EQ(state.count("layer1.0.downsample.0.weight"), 0u) << "layer1 keeps the identity shortcut";
  EXPECT_EQ(state.count("maxpool.weight"), 0u);
  // Registration order is torchvision's, which is the order its state dicts list.
  const std::vector<std::string> names = parameter_names(model);
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + 9),
            (std::vector<std::string>{"conv1.weight", "bn1.weight", "bn1.bias", "layer1.0.conv1.weight",
                                      "layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.conv2.weight",
                                      "layer1.0.bn2.weight", "layer1.0.bn2.bias"}));
  EXPECT_EQ(std::vector<std::string>(names.end() - 5, names.end()),
            (std::vector<std::string>{"layer4.1.conv2.weight", "layer4.1.bn2.weight", "layer4.1.bn2.bias",
                                      "fc.weight", "fc.bias"}));
  EXPECT_EQ(names[21], "layer2.0.downsample.0.weight");  // after layer2.0.bn2, as in torchvision

  // resnet50: 161 parameters, 320 state entries; the projection shortcut sits on the first block of layer1.
  const ResNet bottleneck(nn::resnet_config(50, 1000, StemKind::ImageNet, 0.25f));
  EXPECT_EQ(bottleneck.named_parameters().size(), 161u);
  EXPECT_EQ(bottleneck.state_dict().size(), 320u);
  EXPECT_EQ(bottleneck.state_dict().count("layer1.0.downsample.0.weight"), 1u);
  EXPECT_EQ(bottleneck.state_dict().count("layer3.5.bn3.running_var"), 1u);
}

TEST(ResNet, ZeroInitResidualZeroesTheLastNormOfEveryBlockOnly) {
  for (const int depth : {18, 50}) {
    nn::ResNetConfig config = nn::resnet_config(depth, 4, StemKind::Small, 0.25f);
    config.zero_init_residual = true;
    const ResNet model(config);
    const std::string last_norm = depth == 50 ? ".bn3.weight" : ".bn2.weight";
    int zeroed = 0;
    for (const auto& [name, tensor] : model.named_parameters()) {
      if (tensor.rank() != 1 || !name.ends_with(".weight")) continue;  // a batch norm's gamma
      const bool is_last = name.rfind("layer", 0) == 0 && name.ends_with(last_norm);
      const float expected = is_last ? 0.0f : 1.0f;
      for (float value : tensor.to_vector<float>())
        ASSERT_EQ(value, expected) << name;
      zeroed += is_last;
    }
    EXPECT_EQ(zeroed, depth == 50 ? 16 : 8) << "one per block";
  }
  const ResNet plain(nn::resnet_config(18, 4, StemKind::Small, 0.25f));
  EXPECT_EQ(plain.state_dict().at("layer1.0.bn2.weight").to_vector<float>(), std::vector<float>(16, 1.0f));
}

TEST(ResNet, WeightsAreAFunctionOfTheSeed) {
  nn::ResNetConfig config = nn::resnet_config(8, 3, StemKind::Small, 0.5f);
  config.seed = 11;
  const ResNet first(config), second(config);
  config.seed = 12;
  const ResNet other(config);
  const auto a = first.state_dict(), b = second.state_dict(), c = other.state_dict();
  for (const auto& [name, tensor] : a) {
    if (tensor.dtype() != DType::Float32) continue;
    EXPECT_EQ(tensor.to_vector<float>(), b.at(name).to_vector<float>()) << name;
  }
  for (const std::string name : {"conv1.weight", "layer3.0.downsample.0.weight", "fc.weight", "fc.bias"})
    EXPECT_NE(a.at(name).to_vector<float>(), c.at(name).to_vector<float>()) << name;
}

TEST(ResNet, ConfigurationErrorsAreNamed) {
  EXPECT_THROW(nn::resnet_config(20, 10), ValueError);
  nn::ResNetConfig config;
  config.stage_widths = {16, 32};
  EXPECT_THROW(ResNet{config}, ValueError);
  config = nn::resnet_config(8, 0);
  EXPECT_THROW(ResNet{config}, ValueError);
  ResNet model(nn::resnet_config(8, 3));
  try {
    model(Tensor::zeros({2, 4, 8, 8}));
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& error) {
    EXPECT_NE(std::string(error.what()).find("expects images [N, 3, H, W], got [2,4,8,8]"), std::string::npos)
        << error.what();
  }
}

// The verification: a ResNet-8 (small stem, 16/32/64) fits 32 random images with random labels among
// 7 classes to 100% training accuracy. Random labels leave nothing to generalise from, so this can only pass
// by memorising, which exercises every gradient.
TEST(ResNet, ResNet8OverfitsThirtyTwoRandomImages) {
  Generator generator(2024);
  const Tensor images = Tensor::randn({32, 3, 16, 16}, generator);
  const std::vector<std::int64_t> labels = random_labels(32, generator);
  const Tensor targets = Tensor::from_int64(labels, {32});

  nn::ResNetConfig config = nn::resnet_config(8, 7, StemKind::Small);
  config.seed = 7;
  ResNet model(config);
  optim::Sgd optimizer(model.parameters(), 0.1f, 0.0f, {.momentum = 0.9f});
  constexpr int kSteps = 25;  // 100% is reached after about 12

  float first_loss = 0.0f, last_loss = 0.0f;
  for (int step = 0; step < kSteps; ++step) {
    optimizer.zero_grad();
    const Tensor loss = cross_entropy(model(images), targets);
    loss.backward();
    optimizer.step();
    (step == 0 ? first_loss : last_loss) = loss.item<float>();
  }
  NoGradGuard no_grad;
  EXPECT_EQ(predictions(model(images)), labels) << "loss " << first_loss << " → " << last_loss;
  model.eval();
  EXPECT_EQ(predictions(model(images)), labels) << "in evaluation mode, with the running statistics";
}

// A ResNet-8 trained a few steps under autocast follows the float32 run closely (the activations lose
// about 3 significant digits, the weights nothing), and its weight gradients stay float32.
TEST(ResNet, TrainsUnderAutocastLikeInFloat32) {
  Generator generator(2025);
  const Tensor images = Tensor::randn({8, 3, 12, 12}, generator);
  const Tensor targets = Tensor::from_int64(random_labels(8, generator), {8});
  const auto losses = [&](DType activations) {
    nn::ResNetConfig config = nn::resnet_config(8, 7);
    config.seed = 3;
    ResNet model(config);
    optim::Sgd optimizer(model.parameters(), 0.05f, 0.0f, {.momentum = 0.9f});
    std::vector<float> result;
    for (int step = 0; step < 4; ++step) {
      optimizer.zero_grad();
      AutocastGuard autocast(activations);
      const Tensor logits = model(images);
      EXPECT_EQ(logits.dtype(), DType::Float32);
      const Tensor loss = cross_entropy(logits, targets);
      loss.backward();
      for (const Tensor& p : model.parameters())
        EXPECT_EQ(p.grad().dtype(), DType::Float32);
      optimizer.step();
      result.push_back(loss.item<float>());
    }
    return result;
  };
  const std::vector<float> exact = losses(DType::Float32), mixed = losses(DType::BFloat16);
  ASSERT_EQ(exact.size(), mixed.size());
  for (std::size_t step = 0; step < exact.size(); ++step)
    EXPECT_NEAR(mixed[step], exact[step], 0.02f * std::fabs(exact[step])) << "step " << step;
  EXPECT_NE(mixed, exact) << "the bfloat16 run rounded nothing";
  EXPECT_LT(mixed.back(), mixed.front());
}

// What mixed precision is for: the activations a training step keeps for its backward are stored in
// bfloat16, so the step's peak memory falls by close to half of theirs (weights, gradients and each op's
// transient float32 copies stay float32).
TEST(ResNet, AutocastStepPeaksAtLessMemory) {
  Generator generator(2026);
  const Tensor images = Tensor::randn({16, 3, 32, 32}, generator);
  const Tensor targets = Tensor::from_int64(std::vector<std::int64_t>(16, 1), {16});
  ResNet model(nn::resnet_config(8, 7));
  const auto step_peak = [&](DType activations) {
    for (Tensor p : model.parameters())
      p.set_grad(Tensor());
    reset_peak_in_use(Device::cpu());
    const std::size_t before = allocator_stats(Device::cpu()).in_use_bytes;
    {
      AutocastGuard autocast(activations);
      cross_entropy(model(images), targets).backward();
    }
    return static_cast<double>(allocator_stats(Device::cpu()).peak_in_use_bytes - before);
  };
  const double float32 = step_peak(DType::Float32), bfloat16 = step_peak(DType::BFloat16);
  EXPECT_LT(bfloat16, 0.7 * float32) << "peak of a step: float32 " << float32 / 1e6 << " MB, bfloat16 "
                                     << bfloat16 / 1e6 << " MB";
}

}  // namespace
}  // namespace dscope
