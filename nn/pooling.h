// Pooling layers: max, average, and global average (the head of every ResNet).
#pragma once

#include "nn/module.h"
#include "tensor/ops/pooling.h"

namespace dscope::nn {

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(const Pool2dOptions& options) : options_(options) {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;

 private:
  Pool2dOptions options_;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(const Pool2dOptions& options) : options_(options) {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;

 private:
  Pool2dOptions options_;
};

// [N, C, H, W] → [N, C].
class GlobalAvgPool : public Module {
 public:
  Tensor forward(const Tensor& input) override;
  std::string describe() const override { return "GlobalAvgPool"; }
};

}  // namespace dscope::nn
