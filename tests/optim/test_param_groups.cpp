// Weight-decay parameter groups: rank ≥ 2 parameters (convolution and linear weights) are decayed, rank ≤ 1
// ones (biases, batch norm scale and shift) are not, and an optimizer built on the groups decays only the
// first.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "optim/param_groups.h"
#include "optim/sgd.h"

namespace dscope {
namespace {

// A stand-in with a ResNet's kinds of parameters: a conv weight, batch norm γ and β in a child, a linear
// layer's weight and bias. Only the parameters matter here, so forward is the identity.
class Block : public nn::Module {
 public:
  Block() {
    register_parameter("weight", Tensor::ones({2, 3}));
    register_parameter("bias", Tensor::ones({2}));
  }
  Tensor forward(const Tensor& input) override { return input; }
  std::string describe() const override { return "Block"; }
};

class Net : public nn::Module {
 public:
  Net() {
    register_parameter("conv", Tensor::ones({4, 3, 3, 3}));
    register_parameter("bn_weight", Tensor::ones({4}));
    register_parameter("bn_bias", Tensor::ones({4}));
    register_module("fc", std::make_shared<Block>());
  }
  Tensor forward(const Tensor& input) override { return input; }
  std::string describe() const override { return "Net"; }
};

TEST(WeightDecayGroups, RankDecidesTheGroup) {
  const Net net;
  const optim::WeightDecaySplit split = optim::weight_decay_split(net.named_parameters());
  EXPECT_EQ(split.decayed, (std::vector<std::string>{"conv", "fc.weight"}));
  EXPECT_EQ(split.not_decayed, (std::vector<std::string>{"bn_weight", "bn_bias", "fc.bias"}));

  const std::vector<optim::ParamGroup> groups = optim::weight_decay_groups(net, 0.1f, 5e-4f);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].weight_decay, 5e-4f);
  EXPECT_EQ(groups[1].weight_decay, 0.0f);
  EXPECT_EQ(groups[0].learning_rate, 0.1f);
  EXPECT_EQ(groups[1].learning_rate, 0.1f);
  ASSERT_EQ(groups[0].params.size(), 2u);
  ASSERT_EQ(groups[1].params.size(), 3u);
  const nn::NamedTensors named = net.named_parameters();
  EXPECT_TRUE(groups[0].params[0].same(named[0].second));  // conv
  EXPECT_TRUE(groups[1].params[2].same(named[4].second));  // fc.bias
}

TEST(WeightDecayGroups, OnlyTheDecayedGroupShrinks) {
  // With a zero gradient, a step of SGD changes a parameter only through weight decay: p ← p − lr·wd·p.
  const Net net;
  optim::Sgd sgd(optim::weight_decay_groups(net, 0.5f, 0.1f));
  for (Tensor param : net.parameters())
    param.set_grad(Tensor::zeros(param.shape()));
  sgd.step();
  for (const auto& [name, param] : net.named_parameters()) {
    const float expected = param.rank() >= 2 ? 0.95f : 1.0f;
    for (const float value : param.to_vector<float>())
      EXPECT_FLOAT_EQ(value, expected) << name;
  }
}

TEST(WeightDecayGroups, NegativeDecayIsAnError) {
  const Net net;
  EXPECT_THROW(optim::weight_decay_groups(net, 0.1f, -1.0f), ValueError);
  EXPECT_THROW(optim::weight_decay_groups(net, -0.1f, 0.0f), ValueError);
}

}  // namespace
}  // namespace dscope
