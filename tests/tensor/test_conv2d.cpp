// conv2d as an op: values against the reference kernel (also for non-contiguous inputs), gradients by
// finite differences over strides, padding, dilation, non-square filters, with and without bias, gradients
// only where asked for, conv2d_relu against relu of conv2d, and misuse errors that name the op and the
// shapes.
#include <gtest/gtest.h>

#include <string>

#include "kernels/conv2d.h"
#include "tensor/ops/all.h"
#include "tests/support/compare.h"
#include "tests/support/gradcheck.h"

namespace dscope {
namespace {

std::vector<double> reference_conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias,
                                     const Conv2dOptions& options) {
  kernels::Conv2dGeometry g;
  g.N = input.size(0), g.C = input.size(1), g.H = input.size(2), g.W = input.size(3);
  g.K = weight.size(0), g.R = weight.size(2), g.S = weight.size(3);
  g.stride_h = options.stride_h, g.stride_w = options.stride_w;
  g.pad_h = options.padding_h, g.pad_w = options.padding_w;
  g.dilation_h = options.dilation_h, g.dilation_w = options.dilation_w;
  g.P = kernels::conv2d_output_size(g.H, g.R, g.stride_h, g.pad_h, g.dilation_h);
  g.Q = kernels::conv2d_output_size(g.W, g.S, g.stride_w, g.pad_w, g.dilation_w);
  const std::vector<float> x = input.to_vector<float>(), w = weight.to_vector<float>();
  const std::vector<double> xd(x.begin(), x.end()), wd(w.begin(), w.end());
  std::vector<double> bias_d;
  if (bias.defined()) {
    const std::vector<float> b = bias.to_vector<float>();
    bias_d.assign(b.begin(), b.end());
  }
  std::vector<double> y(static_cast<std::size_t>(g.N * g.K * g.P * g.Q));
  kernels::reference::conv2d_forward<double>(g, xd.data(), wd.data(),
                                             bias.defined() ? bias_d.data() : nullptr, y.data());
  return y;
}

TEST(Conv2d, ValuesMatchTheReference) {
  Generator generator(41);
  const Tensor input = Tensor::randn({2, 3, 7, 9}, generator);
  const Tensor weight = Tensor::randn({4, 3, 3, 2}, generator);
  const Tensor bias = Tensor::randn({4}, generator);
  Conv2dOptions options;
  options.stride_h = 2, options.padding_h = 1, options.padding_w = 2, options.dilation_w = 2;
  const Tensor y = conv2d(input, weight, bias, options);
  EXPECT_EQ(y.shape(), (Shape{2, 4, 4, 11}));  // P = (7 + 2 − 2 − 1)/2 + 1, Q = (9 + 4 − 2 − 1) + 1
  EXPECT_TRUE(testing::all_close(y.to_vector<float>(), reference_conv2d(input, weight, bias, options), 1e-4,
                                 1e-4, "conv2d with bias"));
  EXPECT_TRUE(testing::all_close(conv2d(input, weight, Tensor(), options).to_vector<float>(),
                                 reference_conv2d(input, weight, Tensor(), options), 1e-4, 1e-4,
                                 "conv2d without bias"));
}

TEST(Conv2d, NonContiguousInputIsReadThroughItsStrides) {
  Generator generator(42);
  const Tensor stored = Tensor::randn({2, 6, 5, 3}, generator);  // [N, H, W, C] in memory
  const Tensor input = stored.permute({0, 3, 1, 2});             // a view [N, C, H, W]
  const Tensor weight = Tensor::randn({4, 3, 3, 3}, generator);
  Conv2dOptions options;
  options.padding_h = options.padding_w = 1;
  EXPECT_TRUE(testing::all_close(conv2d(input, weight, Tensor(), options).to_vector<float>(),
                                 reference_conv2d(input.contiguous(), weight, Tensor(), options), 1e-4, 1e-4,
                                 "conv2d of a permuted view"));
}

// conv2d_relu: the kernels' fused ReLU without a graph (also on a stride-2 layer and a direct-convolution
// layer), and conv2d then relu, with its gradient, when one is recorded.
TEST(Conv2d, ReluVariantMatchesReluOfConv2d) {
  Generator generator(45);
  const Tensor input = Tensor::randn({2, 8, 10, 12}, generator);
  for (const std::int64_t stride : {1, 2}) {
    const Tensor weight = Tensor::randn({6, 8, 3, 3}, generator), bias = Tensor::randn({6}, generator);
    Conv2dOptions options;
    options.stride_h = options.stride_w = stride, options.padding_h = options.padding_w = 1;
    const std::vector<float> expected = relu(conv2d(input, weight, bias, options)).to_vector<float>();
    EXPECT_TRUE(testing::all_close(conv2d_relu(input, weight, bias, options).to_vector<float>(),
                                   std::vector<double>(expected.begin(), expected.end()), 1e-6, 1e-6,
                                   "conv2d_relu, stride " + std::to_string(stride)));
  }
  Tensor weight = Tensor::randn({6, 8, 3, 3}, generator);
  weight.set_requires_grad(true);
  const Tensor y = conv2d_relu(input, weight);
  sum(y).backward();
  ASSERT_TRUE(weight.grad().defined()) << "conv2d_relu records a graph when the weight needs a gradient";
  const Tensor expected_grad = [&] {
    Tensor same = weight.detach();
    same.set_requires_grad(true);
    sum(relu(conv2d(input, same))).backward();
    return same.grad();
  }();
  const std::vector<float> expected = expected_grad.to_vector<float>();
  EXPECT_TRUE(testing::all_close(weight.grad().to_vector<float>(),
                                 std::vector<double>(expected.begin(), expected.end()), 1e-6, 1e-6,
                                 "gradient of conv2d_relu"));
}

TEST(Conv2d, AddReluVariantMatchesAddReluOfConv2d) {
  Generator generator(46);
  const Tensor input = Tensor::randn({2, 8, 10, 12}, generator);
  for (const std::int64_t stride : {1, 2}) {
    const Tensor weight = Tensor::randn({6, 8, 3, 3}, generator), bias = Tensor::randn({6}, generator);
    Conv2dOptions options;
    options.stride_h = options.stride_w = stride, options.padding_h = options.padding_w = 1;
    const Tensor convolved = conv2d(input, weight, bias, options);
    const Tensor residual = Tensor::randn(convolved.shape(), generator);
    const std::vector<float> expected = add_relu(convolved, residual).to_vector<float>();
    EXPECT_TRUE(testing::all_close(conv2d_add_relu(input, weight, bias, residual, options).to_vector<float>(),
                                   std::vector<double>(expected.begin(), expected.end()), 1e-6, 1e-6,
                                   "conv2d_add_relu, stride " + std::to_string(stride)));
  }
  // A residual of another shape than the output's is refused, naming both.
  const Tensor weight = Tensor::randn({6, 8, 3, 3}, generator);
  EXPECT_THROW(conv2d_add_relu(input, weight, Tensor(), Tensor::randn({2, 6, 10, 12}, generator)),
               ShapeError);
  // With a graph: the gradient reaches the residual (add_relu after conv2d).
  Tensor residual = Tensor::randn({2, 6, 8, 10}, generator);
  residual.set_requires_grad(true);
  sum(conv2d_add_relu(input, weight, Tensor(), residual)).backward();
  ASSERT_TRUE(residual.grad().defined());
  const std::vector<float> mask = add_relu(conv2d(input, weight), residual.detach()).to_vector<float>();
  const std::vector<float> grad = residual.grad().to_vector<float>();
  for (std::size_t i = 0; i < grad.size(); ++i)
    EXPECT_EQ(grad[i], mask[i] > 0.0f ? 1.0f : 0.0f) << i;
}

struct GradientCase {
  const char* name;
  Shape input, weight;
  bool with_bias;
  Conv2dOptions options;
};

TEST(Conv2d, GradientsMatchFiniteDifferences) {
  Conv2dOptions padded;
  padded.padding_h = padded.padding_w = 1;
  Conv2dOptions strided;
  strided.stride_h = strided.stride_w = 2, strided.padding_h = strided.padding_w = 1;
  Conv2dOptions dilated;
  dilated.dilation_h = dilated.dilation_w = 2, dilated.padding_h = 2, dilated.padding_w = 1;
  Conv2dOptions mixed;
  mixed.stride_w = 2, mixed.padding_h = 1, mixed.dilation_h = 2;
  const GradientCase cases[] = {
      {"3x3 padding 1 with bias", {2, 2, 5, 5}, {3, 2, 3, 3}, true, padded},
      {"3x3 stride 2 padding 1", {2, 2, 6, 5}, {2, 2, 3, 3}, false, strided},
      {"3x3 dilation 2", {1, 2, 7, 6}, {2, 2, 3, 3}, true, dilated},
      {"2x3 mixed stride, padding, dilation", {2, 3, 6, 7}, {2, 3, 2, 3}, true, mixed},
      {"1x1 pointwise", {2, 3, 4, 3}, {4, 3, 1, 1}, true, Conv2dOptions{}},
  };
  Generator generator(43);
  for (const GradientCase& c : cases) {
    std::vector<Tensor> inputs = {Tensor::randn(c.input, generator), Tensor::randn(c.weight, generator)};
    if (c.with_bias) inputs.push_back(Tensor::randn({c.weight[0]}, generator));
    const Conv2dOptions options = c.options;
    EXPECT_TRUE(testing::gradcheck(
        [options](const std::vector<Tensor>& in) {
          return conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), options);
        },
        inputs))
        << c.name;
  }
}

TEST(Conv2d, GradientsThroughWinogradMatchFiniteDifferences) {
  // 64 channels each way, 3×3, stride 1, rows of 20: the kernels choose Winograd for all three passes.
  Generator generator(45);
  Conv2dOptions padded;
  padded.padding_h = padded.padding_w = 1;
  kernels::Conv2dGeometry g;
  g.N = 1, g.C = 64, g.H = 4, g.W = 20, g.K = 64, g.R = g.S = 3, g.pad_h = g.pad_w = 1, g.P = 4, g.Q = 20;
  for (const auto pass : {kernels::cpu::Conv2dPass::forward, kernels::cpu::Conv2dPass::input_gradient,
                          kernels::cpu::Conv2dPass::weight_gradient})
    ASSERT_TRUE(kernels::cpu::conv2d_uses_winograd(g, pass));
  testing::GradcheckOptions options;
  options.max_coordinates_per_input = 12;
  options.step = 1e-2f;  // conv2d is linear in each input, so a larger step costs no accuracy
  EXPECT_TRUE(testing::gradcheck(
      [padded](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], padded); },
      {Tensor::randn({g.N, g.C, g.H, g.W}, generator), Tensor::randn({g.K, g.C, 3, 3}, generator, 0.0f, 0.1f),
       Tensor::randn({g.K}, generator)},
      options));
}

TEST(Conv2d, OnlyRequestedGradientsAreComputed) {
  Generator generator(44);
  const Tensor input = Tensor::randn({1, 2, 4, 4}, generator);  // data, not a parameter: no gradient
  Tensor weight = Tensor::randn({3, 2, 3, 3}, generator);
  weight.set_requires_grad(true);
  sum(conv2d(input, weight)).backward();
  EXPECT_FALSE(input.grad().defined());
  ASSERT_TRUE(weight.grad().defined());
  EXPECT_EQ(weight.grad().shape(), weight.shape());
}

// Calls `body`, expects an exception of type E, and checks that its message holds every one of `parts`.
template <typename E, typename Body>
void expect_error_naming(Body body, const std::vector<std::string>& parts) {
  try {
    body();
    ADD_FAILURE() << "expected an exception naming " << parts.front();
  } catch (const E& error) {
    const std::string message = error.what();
    for (const std::string& part : parts)
      EXPECT_NE(message.find(part), std::string::npos) << "missing '" << part << "' in: " << message;
  }
}

TEST(Conv2d, MisuseErrorsNameTheOpAndShapes) {
  expect_error_naming<ShapeError>(
      [] {
        conv2d(Tensor::zeros({4, 8, 8}), Tensor::zeros({2, 4, 3, 3}));
      },
      {"conv2d", "input", "[4,8,8]"});
  expect_error_naming<ShapeError>(
      [] {
        conv2d(Tensor::zeros({8, 4, 14, 19}), Tensor::zeros({16, 3, 3, 3}));
      },
      {"conv2d: weight expects 3 input channels but input has 4", "[8,4,14,19]", "[16,3,3,3]"});
  expect_error_naming<DTypeError>(
      [] {
        conv2d(Tensor::zeros({1, 3, 8, 8}, DType::Int64), Tensor::zeros({2, 3, 3, 3}));
      },
      {"conv2d", "input", "[1,3,8,8]"});
  expect_error_naming<ShapeError>(
      [] {
        conv2d(Tensor::zeros({1, 3, 4, 4}), Tensor::zeros({2, 3, 7, 7}));
      },
      {"conv2d", "larger than the padded input", "[1,3,4,4]", "[2,3,7,7]"});
  expect_error_naming<ShapeError>(
      [] {
        conv2d(Tensor::zeros({1, 3, 4, 4}), Tensor::zeros({2, 3, 3, 3}), Tensor::zeros({3}));
      },
      {"conv2d", "bias", "[3]", "[2,3,3,3]"});
  Conv2dOptions zero_stride;
  zero_stride.stride_w = 0;
  expect_error_naming<ValueError>(
      [&] {
        conv2d(Tensor::zeros({1, 3, 4, 4}), Tensor::zeros({2, 3, 3, 3}), Tensor(), zero_stride);
      },
      {"conv2d", "stride", "[1,3,4,4]"});
  Conv2dOptions negative_padding;
  negative_padding.padding_h = -1;
  expect_error_naming<ValueError>(
      [&] {
        conv2d(Tensor::zeros({1, 3, 4, 4}), Tensor::zeros({2, 3, 3, 3}), Tensor(), negative_padding);
      },
      {"conv2d", "padding"});
}

}  // namespace
}  // namespace dscope
