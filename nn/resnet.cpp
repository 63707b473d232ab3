#include "nn/resnet.h"

#include <algorithm>
#include <cmath>

#include "nn/conv_batch_norm.h"
#include "tensor/ops/arithmetic.h"
#include "tensor/ops/pooling.h"

namespace dscope::nn {
namespace {

std::shared_ptr<Conv2d> conv(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride,
                             Generator& generator) {
  return std::make_shared<Conv2d>(Conv2dSpec{in, out, kernel, stride, kernel / 2, 1, false}, generator);
}

// The projection shortcut used when a block changes the channel count or the resolution.
std::shared_ptr<Sequential> downsample_if_needed(std::int64_t in, std::int64_t out, std::int64_t stride,
                                                 Generator& generator) {
  if (stride == 1 && in == out) return nullptr;
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      conv(in, out, 1, stride, generator), std::make_shared<BatchNorm2d>(out)});
}

// The residual shortcut: the input itself, or the downsampling 1×1 convolution and batch norm.
Tensor shortcut(Sequential* downsample, const Tensor& input) {
  if (downsample == nullptr) return input;
  auto& conv = dynamic_cast<Conv2d&>(downsample->at(0));
  auto& norm = dynamic_cast<BatchNorm2d&>(downsample->at(1));
  return conv_batch_norm(conv, norm, input);
}

}  // namespace

std::int64_t scaled_width(std::int64_t width, float multiplier) {
  return std::max<std::int64_t>(1, std::llround(static_cast<double>(width) * multiplier));
}

ResNetConfig resnet_config(int depth, std::int64_t classes, StemKind stem, float width_multiplier) {
  ResNetConfig config;
  config.classes = classes;
  config.stem = stem;
  config.width_multiplier = width_multiplier;
  switch (depth) {
    case 8:
      config.blocks_per_stage = {1, 1, 1};
      break;
    case 14:
      config.blocks_per_stage = {2, 2, 2};
      break;
    case 18:
      config.blocks_per_stage = {2, 2, 2, 2};
      break;
    case 34:
      config.blocks_per_stage = {3, 4, 6, 3};
      break;
    case 50:
      config.blocks_per_stage = {3, 4, 6, 3};
      config.block = BlockKind::Bottleneck;
      break;
    default:
      throw ValueError(detail::concat("resnet: depth ", depth, " is not one of 8, 14, 18, 34, 50"));
  }
  if (depth >= 18) config.stage_widths = {64, 128, 256, 512};
  return config;
}

BasicBlock::BasicBlock(std::int64_t in_channels, std::int64_t width, std::int64_t stride, bool zero_init,
                       Generator& generator) {
  conv1_ = register_module("conv1", conv(in_channels, width, 3, stride, generator));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(width));
  conv2_ = register_module("conv2", conv(width, width, 3, 1, generator));
  bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(width, 0.1f, 1e-5f, zero_init));
  downsample_ = downsample_if_needed(in_channels, width, stride, generator);
  if (downsample_) register_module("downsample", downsample_);
}

Tensor BasicBlock::forward(const Tensor& input) {
  const Tensor identity = shortcut(downsample_.get(), input);
  return conv_batch_norm_add_relu(*conv2_, *bn2_, conv_batch_norm(*conv1_, *bn1_, input, true), identity);
}

std::string BasicBlock::describe() const {
  return "BasicBlock";
}

Bottleneck::Bottleneck(std::int64_t in_channels, std::int64_t width, std::int64_t stride, bool zero_init,
                       Generator& generator) {
  conv1_ = register_module("conv1", conv(in_channels, width, 1, 1, generator));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(width));
  conv2_ = register_module("conv2", conv(width, width, 3, stride, generator));
  bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(width));
  conv3_ = register_module("conv3", conv(width, width * kExpansion, 1, 1, generator));
  bn3_ = register_module("bn3", std::make_shared<BatchNorm2d>(width * kExpansion, 0.1f, 1e-5f, zero_init));
  downsample_ = downsample_if_needed(in_channels, width * kExpansion, stride, generator);
  if (downsample_) register_module("downsample", downsample_);
}

Tensor Bottleneck::forward(const Tensor& input) {
  Tensor x = conv_batch_norm(*conv1_, *bn1_, input, true);
  x = conv_batch_norm(*conv2_, *bn2_, x, true);
  return conv_batch_norm_add_relu(*conv3_, *bn3_, x, shortcut(downsample_.get(), input));
}

std::string Bottleneck::describe() const {
  return "Bottleneck";
}

ResNet::ResNet(const ResNetConfig& config) : config_(config) {
  DSCOPE_CHECK(
      !config.blocks_per_stage.empty() && config.blocks_per_stage.size() == config.stage_widths.size(),
      ValueError, "ResNet: ", config.blocks_per_stage.size(), " stage depths for ",
      config.stage_widths.size(), " stage widths");
  DSCOPE_CHECK(config.classes >= 1 && config.input_channels >= 1 && config.width_multiplier > 0.0f,
               ValueError, "ResNet: classes, input channels and width multiplier must be positive");
  Generator generator(config.seed);
  auto scaled = [&](std::int64_t width) { return scaled_width(width, config.width_multiplier); };
  const std::int64_t stem_width = scaled(config.stage_widths.front());
  if (config.stem == StemKind::Small) {
    conv1_ = register_module("conv1", conv(config.input_channels, stem_width, 3, 1, generator));
  } else {
    conv1_ = register_module("conv1", conv(config.input_channels, stem_width, 7, 2, generator));
  }
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(stem_width));
  if (config.stem == StemKind::ImageNet) {
    Pool2dOptions pool;
    pool.kernel_h = pool.kernel_w = 3;
    pool.stride_h = pool.stride_w = 2;
    pool.padding_h = pool.padding_w = 1;
    maxpool_ = register_module("maxpool", std::make_shared<MaxPool2d>(pool));
  }
  const std::int64_t expansion =
      config.block == BlockKind::Basic ? BasicBlock::kExpansion : Bottleneck::kExpansion;
  std::int64_t channels = stem_width;
  for (std::size_t stage = 0; stage < config.blocks_per_stage.size(); ++stage) {
    auto layer = std::make_shared<Sequential>();
    const std::int64_t width = scaled(config.stage_widths[stage]);
    for (std::int64_t index = 0; index < config.blocks_per_stage[stage]; ++index) {
      const std::int64_t stride = stage > 0 && index == 0 ? 2 : 1;
      if (config.block == BlockKind::Basic) {
        layer->append(
            std::make_shared<BasicBlock>(channels, width, stride, config.zero_init_residual, generator));
      } else {
        layer->append(
            std::make_shared<Bottleneck>(channels, width, stride, config.zero_init_residual, generator));
      }
      channels = width * expansion;
    }
    stages_.push_back(register_module("layer" + std::to_string(stage + 1), layer));
  }
  fc_ = register_module("fc", std::make_shared<Linear>(channels, config.classes, generator));
}

Tensor ResNet::forward(const Tensor& images) {
  DSCOPE_CHECK(images.rank() == 4 && images.size(1) == config_.input_channels, ShapeError,
               "ResNet: expects images [N, ", config_.input_channels, ", H, W], got ", images.shape());
  Tensor x = conv_batch_norm(*conv1_, *bn1_, images, true);
  if (maxpool_) x = maxpool_->forward(x);
  for (const auto& stage : stages_)
    x = stage->forward(x);
  return fc_->forward(global_avg_pool2d(x));
}

std::string ResNet::describe() const {
  std::int64_t depth = 2;  // the stem conv and the classifier
  const std::int64_t per_block = config_.block == BlockKind::Basic ? 2 : 3;
  for (std::int64_t blocks : config_.blocks_per_stage)
    depth += blocks * per_block;
  return detail::concat("ResNet-", depth, "(", config_.block == BlockKind::Basic ? "basic" : "bottleneck",
                        ", ", config_.stem == StemKind::Small ? "small" : "imagenet", " stem, width x",
                        config_.width_multiplier, ", ", config_.classes, " classes)");
}

}  // namespace dscope::nn
