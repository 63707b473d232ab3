// Mixed precision (tensor/autocast.h): bfloat16 activations with float32 arithmetic and master weights.
//
// The ops that take bfloat16 activations compute in float32 on the widened values, so run on bfloat16 they
// must give exactly what they give on float32 tensors holding the same (rounded) values, rounded once:
// the output, the input gradients (for the same rounded output gradient), and the float32 weight
// gradients bit for bit. That is what each op's test below checks, which also pins where the rounding
// happens: once per stored tensor, never inside an op.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "tensor/autograd/node.h"
#include "tensor/ops/all.h"

namespace dscope {
namespace {

using Op = std::function<Tensor(const std::vector<Tensor>& activations)>;

// The float32 values a bfloat16 tensor holds, as a vector.
std::vector<float> values_of(const Tensor& x) {
  return dense_as(x, DType::Float32).to_vector<float>();
}

// x's values rounded to bfloat16 and widened back to float32.
Tensor rounded(const Tensor& x) {
  return dense_as(dense_as(x, DType::BFloat16), DType::Float32);
}

struct Run {
  std::vector<float> output;
  std::vector<std::vector<float>> activation_grads, parameter_grads;
};

// op on `activations` (float32 tensors holding bfloat16 values) cast to `dtype`, then backward from
// grad_output (float32, bfloat16 values) cast likewise; the gradients of the activations as float32.
Run run_in(DType dtype, const Op& op, const std::vector<Tensor>& activations,
           const std::vector<Tensor>& parameters, const Tensor& grad_output) {
  std::vector<Tensor> leaves, arguments;
  for (const Tensor& activation : activations) {
    Tensor leaf = dense_copy(activation);
    leaf.set_requires_grad(true);
    leaves.push_back(leaf);
    arguments.push_back(cast(leaf, dtype));
  }
  for (Tensor parameter : parameters)
    parameter.set_grad(Tensor());
  const Tensor y = op(arguments);
  EXPECT_EQ(y.dtype(), dtype);
  y.backward(dense_as(grad_output, dtype));
  Run run;
  run.output = values_of(y);
  for (const Tensor& leaf : leaves)
    run.activation_grads.push_back(values_of(leaf.grad()));
  for (const Tensor& parameter : parameters) {
    EXPECT_EQ(parameter.grad().dtype(), DType::Float32) << "master weights keep float32 gradients";
    run.parameter_grads.push_back(parameter.grad().to_vector<float>());
  }
  return run;
}

std::vector<float> rounded_values(const std::vector<float>& values) {
  std::vector<float> result;
  for (const float value : values)
    result.push_back(kernels::to_float(kernels::to_bfloat16(value)));
  return result;
}

// The check described at the top of the file, on random activations of the given shapes.
void expect_bfloat16_matches_float32(const Op& op, const std::vector<Shape>& activation_shapes,
                                     const std::vector<Tensor>& parameters = {}) {
  Generator generator(11);
  std::vector<Tensor> activations;
  for (const Shape& shape : activation_shapes)
    activations.push_back(rounded(Tensor::randn(shape, generator)));
  Shape output_shape;
  {
    NoGradGuard no_grad;
    output_shape = op(activations).shape();
  }
  const Tensor grad_output = rounded(Tensor::randn(output_shape, generator));
  const Run exact = run_in(DType::Float32, op, activations, parameters, grad_output);
  const Run mixed = run_in(DType::BFloat16, op, activations, parameters, grad_output);
  EXPECT_EQ(mixed.output, rounded_values(exact.output)) << "output";
  for (std::size_t i = 0; i < activations.size(); ++i)
    EXPECT_EQ(mixed.activation_grads[i], rounded_values(exact.activation_grads[i])) << "activation " << i;
  for (std::size_t i = 0; i < parameters.size(); ++i)
    EXPECT_EQ(mixed.parameter_grads[i], exact.parameter_grads[i]) << "parameter " << i;
}

Tensor parameter(const Shape& shape, std::uint64_t seed) {
  Generator generator(seed);
  Tensor p = Tensor::randn(shape, generator, 0.0f, 0.3f);
  p.set_requires_grad(true);
  return p;
}

TEST(MixedPrecision, CastRoundsAndItsGradientComesBack) {
  Tensor x = Tensor::from_vector({1.0f, 1.00390625f, 1.01171875f, -3.14159f}, {4});
  x.set_requires_grad(true);
  const Tensor narrowed = cast(x, DType::BFloat16);
  EXPECT_EQ(narrowed.dtype(), DType::BFloat16);
  // 1 + 2^-8 is half way between 1 and 1 + 2^-7 (ties to even: 1); 1 + 3·2^-8 goes up to 1 + 2^-6.
  EXPECT_EQ(values_of(narrowed), (std::vector<float>{1.0f, 1.0f, 1.015625f, -3.140625f}));
  EXPECT_TRUE(cast(narrowed, DType::BFloat16).same(narrowed));
  std::ostringstream printed;
  printed << narrowed;
  EXPECT_NE(printed.str().find("-3.1406"), std::string::npos) << printed.str();
  EXPECT_NE(printed.str().find("dtype=bfloat16"), std::string::npos) << printed.str();
  sum(cast(narrowed, DType::Float32)).backward();
  EXPECT_EQ(x.grad().dtype(), DType::Float32);
  EXPECT_EQ(x.grad().to_vector<float>(), std::vector<float>(4, 1.0f));
  EXPECT_THROW(cast(x, DType::Int64), DTypeError);
  EXPECT_THROW(cast(Tensor::from_int64({1}, {1}), DType::Float32), DTypeError);
}

TEST(MixedPrecision, Conv2dMatchesFloat32) {
  const Tensor weight = parameter({4, 3, 3, 3}, 1), bias = parameter({4}, 2);
  Conv2dOptions options;
  options.stride_h = options.stride_w = 2;
  options.padding_h = options.padding_w = 1;
  expect_bfloat16_matches_float32(
      [&](const std::vector<Tensor>& a) { return conv2d(a[0], weight, bias, options); }, {{2, 3, 9, 8}},
      {weight, bias});
}

TEST(MixedPrecision, BatchNormAndItsFusionsMatchFloat32) {
  const Tensor gamma = parameter({3}, 3), beta = parameter({3}, 4);
  const Tensor running_mean = Tensor::zeros({3}), running_var = Tensor::ones({3});
  expect_bfloat16_matches_float32(
      [&](const std::vector<Tensor>& a) {
        return batch_norm2d(a[0], gamma, beta, Tensor(), Tensor(), true, 0.1f, 1e-5f);
      },
      {{2, 3, 4, 5}}, {gamma, beta});
  expect_bfloat16_matches_float32(
      [&](const std::vector<Tensor>& a) {
        return batch_norm2d_relu(a[0], gamma, beta, Tensor(), Tensor(), true, 0.1f, 1e-5f);
      },
      {{2, 3, 4, 5}}, {gamma, beta});
  expect_bfloat16_matches_float32(
      [&](const std::vector<Tensor>& a) {
        return batch_norm2d_add_relu(a[0], gamma, beta, Tensor(), Tensor(), a[1], true, 0.1f, 1e-5f);
      },
      {{2, 3, 4, 5}, {2, 3, 4, 5}}, {gamma, beta});
  expect_bfloat16_matches_float32(
      [&](const std::vector<Tensor>& a) {
        return batch_norm2d(a[0], gamma, beta, running_mean, running_var, false, 0.1f, 1e-5f);
      },
      {{2, 3, 4, 5}}, {gamma, beta});
}

TEST(MixedPrecision, ActivationsAndPoolingMatchFloat32) {
  expect_bfloat16_matches_float32([](const std::vector<Tensor>& a) { return relu(a[0]); }, {{3, 7}});
  expect_bfloat16_matches_float32([](const std::vector<Tensor>& a) { return add_relu(a[0], a[1]); },
                                  {{2, 2, 3, 3}, {2, 2, 3, 3}});
  Pool2dOptions pool;
  pool.kernel_h = pool.kernel_w = 3;
  pool.padding_h = pool.padding_w = 1;
  expect_bfloat16_matches_float32([&](const std::vector<Tensor>& a) { return max_pool2d(a[0], pool); },
                                  {{2, 3, 8, 7}});
  expect_bfloat16_matches_float32([&](const std::vector<Tensor>& a) { return avg_pool2d(a[0], pool); },
                                  {{2, 3, 8, 7}});
  expect_bfloat16_matches_float32([](const std::vector<Tensor>& a) { return global_avg_pool2d(a[0]); },
                                  {{2, 3, 5, 4}});
}

TEST(MixedPrecision, GradientsMeetingInBFloat16AreAddedInFloat) {
  // x is used twice, so the two bfloat16 gradients of its bfloat16 copy meet and are added.
  Tensor x = Tensor::from_vector({1.0f, -2.0f, 3.0f, 0.5f}, {1, 1, 2, 2});
  x.set_requires_grad(true);
  const Tensor copy = cast(x, DType::BFloat16);
  const Tensor y = add_relu(copy, relu(copy));
  y.backward(dense_as(Tensor::from_vector({1.0f, 1.0f, 1.0f, 3.0f}, {1, 1, 2, 2}), DType::BFloat16));
  // Where x > 0 both paths pass the gradient: 2·g; at x = −2, add_relu's output is 0: nothing.
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{2.0f, 0.0f, 2.0f, 6.0f}));
}

TEST(MixedPrecision, AutocastStoresConvolutionOutputsInBFloat16) {
  Generator generator(5);
  const Tensor x = Tensor::randn({1, 2, 5, 5}, generator), w = Tensor::randn({3, 2, 3, 3}, generator);
  EXPECT_EQ(autocast_dtype(), DType::Float32);
  EXPECT_EQ(conv2d(x, w).dtype(), DType::Float32);
  {
    AutocastGuard autocast(DType::BFloat16);
    EXPECT_EQ(conv2d(x, w).dtype(), DType::BFloat16);
    EXPECT_EQ(conv2d_relu(x, w).dtype(), DType::BFloat16);
    EXPECT_EQ(values_of(conv2d(x, w)), values_of(conv2d(cast(x, DType::BFloat16), w)));
    {
      AutocastGuard off(DType::Float32);
      EXPECT_EQ(conv2d(x, w).dtype(), DType::Float32);
    }
    EXPECT_EQ(autocast_dtype(), DType::BFloat16);
  }
  EXPECT_EQ(autocast_dtype(), DType::Float32);
  EXPECT_THROW(AutocastGuard(DType::Int64), DTypeError);
  EXPECT_EQ(autocast_dtype(), DType::Float32);
}

TEST(MixedPrecision, OpsThatNeedFloat32SayWhatTheyGot) {
  const Tensor activations = dense_as(Tensor::ones({2, 3, 4, 4}), DType::BFloat16);
  try {
    matmul(activations.reshape({6, 16}), Tensor::ones({16, 2}));
    FAIL() << "matmul accepted bfloat16";
  } catch (const DTypeError& error) {
    EXPECT_NE(std::string(error.what()).find("bfloat16"), std::string::npos) << error.what();
  }
  EXPECT_THROW(batch_norm2d_add_relu(activations, Tensor(), Tensor(), Tensor(), Tensor(),
                                     Tensor::ones({2, 3, 4, 4}), true, 0.1f, 1e-5f),
               DTypeError);
  EXPECT_THROW(add_relu(activations, Tensor::ones({2, 3, 4, 4})), DTypeError);
}

TEST(MixedPrecision, AGradientOfTheWrongDtypeIsCaught) {
  Tensor x = Tensor::ones({2});
  x.set_requires_grad(true);
  const Tensor copy = cast(x, DType::BFloat16);
  const Tensor y = autograd::record(
      "returns_float32", dense_as(copy, DType::BFloat16), {copy},
      [](const Tensor& grad) -> autograd::Gradients { return {dense_as(grad, DType::Float32)}; });
  EXPECT_THROW(y.backward(Tensor::ones({2})), DTypeError);
}

}  // namespace
}  // namespace dscope
