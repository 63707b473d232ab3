// Layers: each one's output is exactly the functional op's on the same tensors (the layer adds only
// ownership of parameters and the train/eval switch), its parameters and buffers carry PyTorch's names, and
// its initialisation has the documented distribution. Construction errors name the layer and the values.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "nn/activation.h"
#include "nn/batch_norm2d.h"
#include "nn/conv2d.h"
#include "nn/dropout.h"
#include "nn/flatten.h"
#include "nn/init.h"
#include "nn/linear.h"
#include "nn/pooling.h"
#include "nn/sequential.h"
#include "tensor/ops/all.h"

namespace dscope {
namespace {

std::vector<std::string> names_of(const nn::NamedTensors& named) {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : named)
    names.push_back(name);
  return names;
}

// Bit-for-bit: a layer must call the very same op, so there is no tolerance.
void expect_identical(const Tensor& actual, const Tensor& expected) {
  ASSERT_EQ(actual.shape(), expected.shape());
  EXPECT_EQ(actual.to_vector<float>(), expected.to_vector<float>());
}

double standard_deviation(const Tensor& x) {
  const std::vector<float> values = x.to_vector<float>();
  double total = 0.0, squares = 0.0;
  for (float value : values)
    total += value, squares += static_cast<double>(value) * value;
  const double mean = total / static_cast<double>(values.size());
  return std::sqrt(squares / static_cast<double>(values.size()) - mean * mean);
}

TEST(Layers, Conv2dMatchesTheOp) {
  Generator generator(1);
  nn::Conv2dSpec spec;
  spec.in_channels = 3, spec.out_channels = 5, spec.kernel_size = 3, spec.stride = 2, spec.padding = 1;
  spec.bias = true;
  nn::Conv2d layer(spec, generator);
  EXPECT_EQ(names_of(layer.named_parameters()), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(layer.weight.shape(), Shape({5, 3, 3, 3}));
  copy_elements(Tensor::randn({5}, generator), layer.bias.detach());  // starts at zero; make it count

  const Tensor input = Tensor::randn({2, 3, 9, 7}, generator);
  Conv2dOptions options;
  options.stride_h = options.stride_w = 2;
  options.padding_h = options.padding_w = 1;
  expect_identical(layer(input), conv2d(input, layer.weight, layer.bias, options));
  EXPECT_EQ(layer.describe(), "Conv2d(3->5, 3x3, stride 2, padding 1, bias)");
}

TEST(Layers, Conv2dWithoutBiasAndWithDilation) {
  Generator generator(2);
  nn::Conv2d layer({4, 2, 3, 1, 2, 2, false}, generator);
  EXPECT_FALSE(layer.bias.defined());
  EXPECT_EQ(names_of(layer.named_parameters()), (std::vector<std::string>{"weight"}));
  const Tensor input = Tensor::randn({1, 4, 8, 8}, generator);
  Conv2dOptions options;
  options.padding_h = options.padding_w = 2;
  options.dilation_h = options.dilation_w = 2;
  expect_identical(layer(input), conv2d(input, layer.weight, Tensor(), options));
}

TEST(Layers, Conv2dWeightIsKaimingNormalOverFanOut) {
  Generator generator(3);
  nn::Conv2d layer({32, 64, 3, 1, 1, 1, false}, generator);
  // fan_out = 64·3·3; 18,432 samples give a standard error of about 0.5%.
  EXPECT_NEAR(standard_deviation(layer.weight), std::sqrt(2.0 / (64 * 9)), 0.03 * std::sqrt(2.0 / (64 * 9)));
}

TEST(Layers, Conv2dRejectsNonPositiveSizes) {
  Generator generator(4);
  try {
    nn::Conv2d({0, 4, 3, 1, 1, 1, false}, generator);
    FAIL() << "expected ValueError";
  } catch (const ValueError& error) {
    EXPECT_NE(
        std::string(error.what()).find("Conv2d: channels and kernel size must be positive (in 0, out 4"),
        std::string::npos)
        << error.what();
  }
}

TEST(Layers, BatchNorm2dMatchesTheOpInTrainingAndEvaluation) {
  Generator generator(5);
  nn::BatchNorm2d layer(3, 0.2f, 1e-3f);
  EXPECT_EQ(names_of(layer.named_parameters()), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(names_of(layer.named_buffers()),
            (std::vector<std::string>{"running_mean", "running_var", "num_batches_tracked"}));
  EXPECT_EQ(layer.weight.to_vector<float>(), std::vector<float>(3, 1.0f));
  EXPECT_EQ(layer.running_var.to_vector<float>(), std::vector<float>(3, 1.0f));
  copy_elements(Tensor::randn({3}, generator), layer.weight.detach());
  copy_elements(Tensor::randn({3}, generator), layer.bias.detach());

  const Tensor input = Tensor::randn({4, 3, 5, 5}, generator, 1.0f, 2.0f);
  const Tensor mean = Tensor::zeros({3}), variance = Tensor::ones({3});
  expect_identical(layer(input),
                   batch_norm2d(input, layer.weight, layer.bias, mean, variance, true, 0.2f, 1e-3f));
  expect_identical(layer.running_mean, mean);
  expect_identical(layer.running_var, variance);
  EXPECT_EQ(layer.num_batches_tracked.item<std::int64_t>(), 1);

  layer.eval();
  expect_identical(layer(input),
                   batch_norm2d(input, layer.weight, layer.bias, mean, variance, false, 0.2f, 1e-3f));
  EXPECT_EQ(layer.num_batches_tracked.item<std::int64_t>(), 1) << "evaluation does not count batches";
  expect_identical(layer.running_mean, mean);
}

TEST(Layers, BatchNorm2dZeroInitStartsGammaAtZero) {
  nn::BatchNorm2d layer(4, 0.1f, 1e-5f, true);
  EXPECT_EQ(layer.weight.to_vector<float>(), std::vector<float>(4, 0.0f));
  EXPECT_EQ(layer.bias.to_vector<float>(), std::vector<float>(4, 0.0f));
  EXPECT_THROW(nn::BatchNorm2d(0), ValueError);
}

TEST(Layers, LinearMatchesTheOpAndIsUniformWithinOneOverRootFanIn) {
  Generator generator(6);
  nn::Linear layer(50, 40, generator);
  EXPECT_EQ(names_of(layer.named_parameters()), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(layer.weight.shape(), Shape({40, 50}));
  const float bound = 1.0f / std::sqrt(50.0f);
  for (const Tensor& parameter : {layer.weight, layer.bias})
    for (float value : parameter.to_vector<float>()) {
      EXPECT_LE(std::abs(value), bound);
    }
  // Uniform on [−b, b] has standard deviation b/√3.
  EXPECT_NEAR(standard_deviation(layer.weight), bound / std::sqrt(3.0), 0.05 * bound / std::sqrt(3.0));

  const Tensor input = Tensor::randn({3, 50}, generator);
  expect_identical(layer(input), linear(input, layer.weight, layer.bias));

  nn::Linear no_bias(5, 2, generator, false);
  EXPECT_FALSE(no_bias.bias.defined());
  const Tensor small = Tensor::randn({3, 5}, generator);
  expect_identical(no_bias(small), linear(small, no_bias.weight));
  EXPECT_EQ(no_bias.describe(), "Linear(5->2)");
  EXPECT_THROW(nn::Linear(0, 2, generator), ValueError);
}

TEST(Layers, ActivationPoolingAndFlattenMatchTheirOps) {
  Generator generator(7);
  const Tensor input = Tensor::randn({2, 3, 7, 6}, generator);
  expect_identical(nn::ReLU()(input), relu(input));

  Pool2dOptions options;
  options.kernel_h = options.kernel_w = 3;
  options.stride_h = options.stride_w = 2;
  options.padding_h = options.padding_w = 1;
  expect_identical(nn::MaxPool2d(options)(input), max_pool2d(input, options));
  expect_identical(nn::AvgPool2d(options)(input), avg_pool2d(input, options));
  EXPECT_EQ(nn::MaxPool2d(options).describe(), "MaxPool2d(3x3, stride 2, padding 1)");
  expect_identical(nn::GlobalAvgPool()(input), global_avg_pool2d(input));

  const Tensor flat = nn::Flatten()(input);
  EXPECT_EQ(flat.shape(), Shape({2, 3 * 7 * 6}));
  EXPECT_EQ(flat.to_vector<float>(), input.to_vector<float>());
  EXPECT_THROW(nn::Flatten()(Tensor::ones({4})), ShapeError);
}

TEST(Layers, DropoutDrawsFromItsOwnSeededGeneratorAndIsIdentityInEvaluation) {
  Generator generator(8);
  const Tensor input = Tensor::randn({4, 50}, generator);
  nn::Dropout layer(0.3f, 99);
  Generator same_seed(99);
  expect_identical(layer(input), dropout(input, 0.3f, true, same_seed));
  expect_identical(layer(input), dropout(input, 0.3f, true, same_seed));  // the stream continues
  layer.eval();
  expect_identical(layer(input), input);
  EXPECT_THROW(nn::Dropout(1.0f), ValueError);
}

TEST(Layers, SequentialChainsItsChildrenAndNamesThemByIndex) {
  Generator generator(9);
  auto conv = std::make_shared<nn::Conv2d>(nn::Conv2dSpec{3, 4, 3, 1, 1, 1, false}, generator);
  auto norm = std::make_shared<nn::BatchNorm2d>(4);
  auto linear_layer = std::make_shared<nn::Linear>(4, 2, generator);
  nn::Sequential chain({conv, norm, std::make_shared<nn::ReLU>(), std::make_shared<nn::GlobalAvgPool>()});
  chain.append(linear_layer);
  EXPECT_EQ(chain.size(), 5u);
  EXPECT_EQ(names_of(chain.named_parameters()),
            (std::vector<std::string>{"0.weight", "1.weight", "1.bias", "4.weight", "4.bias"}));

  const Tensor input = Tensor::randn({2, 3, 5, 5}, generator);
  const Tensor expected = linear_layer->forward(global_avg_pool2d(relu(norm->forward(conv->forward(input)))));
  expect_identical(chain(input), expected);

  chain.eval();
  EXPECT_FALSE(norm->is_training());
}

}  // namespace
}  // namespace dscope
