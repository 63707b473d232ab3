// Forward FLOPs per image of a small-stem BasicBlock ResNet: convolutions and the classifier only (batch
// norm, ReLU and pooling are a few percent), 2·P·Q·K·C·R·S per conv. bench_training (CPU) and
// bench_cuda_training (GPU) both report GFLOP/s with it, so their figures count the same work.
#pragma once

#include <cmath>
#include <cstdint>

#include "nn/resnet.h"

namespace dscope {

inline double forward_flops_per_image(const nn::ResNetConfig& config, std::int64_t image_size) {
  auto conv = [](double size, double in, double out, double kernel) {
    return 2.0 * size * size * out * in * kernel * kernel;
  };
  double size = static_cast<double>(image_size);
  double channels = static_cast<double>(config.stage_widths.front());
  double flops = conv(size, static_cast<double>(config.input_channels), channels, 3);
  for (std::size_t stage = 0; stage < config.stage_widths.size(); ++stage) {
    const double width = static_cast<double>(config.stage_widths[stage]);
    for (std::int64_t block = 0; block < config.blocks_per_stage[stage]; ++block) {
      if (stage > 0 && block == 0) size = std::ceil(size / 2.0);
      flops += conv(size, channels, width, 3) + conv(size, width, width, 3);
      if (channels != width || (stage > 0 && block == 0)) flops += conv(size, channels, width, 1);
      channels = width;
    }
  }
  return flops + 2.0 * channels * static_cast<double>(config.classes);
}

}  // namespace dscope
