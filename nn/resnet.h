// The ResNet family (He et al. 2016) from one builder: BasicBlock or Bottleneck stages, any depth and
// width, a small-image stem (3×3 conv, no max pool: for 64×64 lesion crops) or the ImageNet stem
// (7×7 stride 2 + max pool), any number of classes. Module names follow torchvision (conv1, bn1,
// layer1.0.conv1, layer2.0.downsample.0, fc), so state dicts line up with PyTorch's.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nn/batch_norm2d.h"
#include "nn/conv2d.h"
#include "nn/linear.h"
#include "nn/pooling.h"
#include "nn/sequential.h"

namespace dscope::nn {

enum class BlockKind { Basic, Bottleneck };
enum class StemKind { Small, ImageNet };

struct ResNetConfig {
  BlockKind block = BlockKind::Basic;
  std::vector<std::int64_t> blocks_per_stage = {1, 1, 1};
  std::vector<std::int64_t> stage_widths = {16, 32, 64};  // inner width; a Bottleneck outputs 4× this
  float width_multiplier = 1.0f;
  StemKind stem = StemKind::Small;
  std::int64_t input_channels = 3;
  std::int64_t classes = 7;
  // Start the last batch norm of each residual branch at γ = 0, so every block begins as the identity
  // (Goyal et al. 2017): deeper nets train more stably from the first step.
  bool zero_init_residual = false;
  std::uint64_t seed = 0;
};

// A stage's channel count after the width multiplier: width × multiplier rounded, at least 1.
std::int64_t scaled_width(std::int64_t width, float multiplier);

// The standard configurations: depth 8 and 14 (three stages of 16/32/64, one or two BasicBlocks each),
// 18 and 34 (four stages of 64/128/256/512, BasicBlocks [2,2,2,2] / [3,4,6,3]) and 50 (Bottlenecks
// [3,4,6,3]). Throws ValueError for any other depth.
ResNetConfig resnet_config(int depth, std::int64_t classes, StemKind stem = StemKind::Small,
                           float width_multiplier = 1.0f);

// conv3×3 → BN → ReLU → conv3×3 → BN, plus the shortcut (identity, or 1×1 conv + BN when the shape
// changes), then ReLU.
class BasicBlock : public Module {
 public:
  static constexpr std::int64_t kExpansion = 1;
  BasicBlock(std::int64_t in_channels, std::int64_t width, std::int64_t stride, bool zero_init,
             Generator& generator);
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_;
  std::shared_ptr<Sequential> downsample_;  // null for the identity shortcut
};

// conv1×1 → BN → ReLU → conv3×3 (stride) → BN → ReLU → conv1×1 (4× width) → BN, plus the shortcut, then ReLU.
class Bottleneck : public Module {
 public:
  static constexpr std::int64_t kExpansion = 4;
  Bottleneck(std::int64_t in_channels, std::int64_t width, std::int64_t stride, bool zero_init,
             Generator& generator);
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_, conv3_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_, bn3_;
  std::shared_ptr<Sequential> downsample_;
};

class ResNet : public Module {
 public:
  explicit ResNet(const ResNetConfig& config);
  // images [N, input_channels, H, W] → logits [N, classes].
  Tensor forward(const Tensor& images) override;
  std::string describe() const override;
  const ResNetConfig& config() const { return config_; }

 private:
  ResNetConfig config_;
  std::shared_ptr<Conv2d> conv1_;
  std::shared_ptr<BatchNorm2d> bn1_;
  std::shared_ptr<MaxPool2d> maxpool_;  // ImageNet stem only
  std::vector<std::shared_ptr<Sequential>> stages_;
  std::shared_ptr<Linear> fc_;
};

}  // namespace dscope::nn
