// Every op on the GPU against the same op on the CPU, forward and backward: tensor creation and transfer,
// arithmetic with broadcasting, exp/log, reductions, activations, matmul and linear (own GEMM, cuBLAS, TF32),
// conv2d over a table of awkward shapes (also in TF32, with the cuBLAS GEMM and with cuDNN where built),
// batch norm, pooling, log-softmax, cross-entropy, dropout (the same mask bit for bit), contiguous and
// concat, and the casts and layers of mixed precision on bfloat16 activations.
//
// Inputs come from a seeded generator on the CPU and are copied, so both devices start from the same bits;
// the tolerances are explained where they are defined (cuda_comparison.h). Without a CUDA device every test
// skips with a reason.
#include <gtest/gtest.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "tensor/allocator.h"
#include "tensor/ops/all.h"
#include "tests/cuda/cuda_comparison.h"
#include "tests/support/expect_error.h"

namespace dscope {
namespace {

using testing::expect_matches_cpu;
using testing::kAccumulated;
using testing::kBf16;
using testing::kBf16Storage;
using testing::kBf16StorageGradient;
using testing::kElementwise;
using testing::kExact;
using testing::kTf32;
using testing::matches_cpu;

using TensorCuda = testing::CudaTest;
using ArithmeticCuda = testing::CudaTest;
using ReductionCuda = testing::CudaTest;
using ActivationCuda = testing::CudaTest;
using MatmulCuda = testing::CudaTest;
using LinearCuda = testing::CudaTest;
using ConvCuda = testing::CudaTest;
using BatchNormCuda = testing::CudaTest;
using PoolCuda = testing::CudaTest;
using LogSoftmaxCuda = testing::CudaTest;
using CrossEntropyCuda = testing::CudaTest;
using DropoutCuda = testing::CudaTest;
using MixedPrecisionCuda = testing::CudaTest;

const Device kGpu = Device::cuda();

// Random integer class labels in [0, classes), as an int64 tensor [n].
Tensor random_labels(std::int64_t n, std::int64_t classes, Generator& generator) {
  std::vector<std::int64_t> labels;
  for (std::int64_t i = 0; i < n; ++i)
    labels.push_back(static_cast<std::int64_t>(generator.below(static_cast<std::uint64_t>(classes))));
  return Tensor::from_int64(labels, {n});
}

// ---- Creation, transfer, copies ----

// The settings live on the host: checked with or without a device.
TEST(CudaSettings, EveryMathModeIsKeptAndNamed) {
  using kernels::cuda::MathMode;
  for (const auto& [mode, name] : {std::pair{MathMode::FP32, "fp32"}, std::pair{MathMode::TF32, "tf32"},
                                   std::pair{MathMode::BF16, "bf16"}}) {
    const testing::ScopedMathMode scoped(mode);
    EXPECT_EQ(kernels::cuda::math_mode(), mode);
    EXPECT_STREQ(kernels::cuda::name_of(mode), name);
  }
}

TEST(CudaSettings, EveryConvBackendIsKeptAndNamed) {
  using kernels::cuda::ConvBackend;
  for (const auto& [backend, name] :
       {std::pair{ConvBackend::Own, "own"}, std::pair{ConvBackend::Direct, "direct"},
        std::pair{ConvBackend::Cudnn, "cudnn"}}) {
    EXPECT_STREQ(kernels::cuda::name_of(backend), name);
    if (backend == ConvBackend::Cudnn && !kernels::cuda::cudnn_built()) {
      EXPECT_THROW(kernels::cuda::set_conv_backend(backend), std::runtime_error);
      continue;
    }
    const testing::ScopedConvBackend scoped(backend);
    EXPECT_EQ(kernels::cuda::conv_backend(), backend);
  }
}

TEST_F(TensorCuda, RoundTripKeepsEveryBit) {
  Generator generator(1);
  const Tensor x = Tensor::randn({3, 1000, 7}, generator);
  const Tensor on_gpu = x.to(kGpu);
  EXPECT_EQ(on_gpu.device(), kGpu);
  EXPECT_EQ(on_gpu.to(Device::cpu()).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(on_gpu.to_vector<float>(), x.to_vector<float>());
  const Tensor labels = random_labels(513, 1000, generator);
  EXPECT_EQ(labels.to(kGpu).to_vector<std::int64_t>(), labels.to_vector<std::int64_t>());
  EXPECT_EQ(Tensor::from_vector({1.5f, -2.0f}, {2}, kGpu).to_vector<float>(),
            (std::vector<float>{1.5f, -2.0f}));
}

TEST_F(TensorCuda, FillZerosAndOnesMatchCpu) {
  // 100,003 elements: more than one grid of a typical launch, and not a multiple of any block size.
  const Shape shape{7, 14287};
  EXPECT_TRUE(matches_cpu(Tensor::zeros(shape, DType::Float32, kGpu), Tensor::zeros(shape), kExact, "zeros"));
  EXPECT_TRUE(matches_cpu(Tensor::ones(shape, DType::Float32, kGpu), Tensor::ones(shape), kExact, "ones"));
  EXPECT_TRUE(matches_cpu(Tensor::full(shape, -3.25f, kGpu), Tensor::full(shape, -3.25f), kExact, "full"));
  EXPECT_TRUE(matches_cpu(Tensor::zeros(shape, DType::Int64, kGpu), Tensor::zeros(shape, DType::Int64),
                          kExact, "zeros int64"));
  EXPECT_TRUE(matches_cpu(Tensor::ones({5}, DType::Int64, kGpu), Tensor::ones({5}, DType::Int64), kExact,
                          "ones int64"));
  EXPECT_TRUE(matches_cpu(Tensor::scalar(0.5f, kGpu), Tensor::scalar(0.5f), kExact, "scalar"));
}

TEST_F(TensorCuda, ContiguousOfPermutedAndNarrowedViewsMatchesCpu) {
  Generator generator(2);
  const Tensor x = Tensor::randn({2, 3, 5, 7}, generator);
  expect_matches_cpu(
      [](const std::vector<Tensor>& in) {
        return in[0].permute({0, 2, 3, 1}).contiguous();
      },
      {x}, "contiguous of permute(0,2,3,1)", kExact, kExact);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return in[0].transpose(1, 3).contiguous(); }, {x},
                     "contiguous of transpose(1,3)", kExact, kExact);
  expect_matches_cpu(
      [](const std::vector<Tensor>& in) {
        return in[0].narrow(2, 1, 3).permute({3, 1, 0, 2}).contiguous();
      },
      {x}, "contiguous of narrow then permute", kExact, kExact);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return in[0].narrow(3, 2, 4).reshape({-1}); }, {x},
                     "reshape of a narrowed view", kExact, kExact);
}

TEST_F(TensorCuda, ConcatMatchesCpu) {
  Generator generator(3);
  const Tensor a = Tensor::randn({2, 3, 5}, generator), b = Tensor::randn({2, 1, 5}, generator),
               c = Tensor::randn({2, 4, 5}, generator);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return concat(in, 1); }, {a, b, c}, "concat axis 1",
                     kExact, kExact);
  const Tensor d = Tensor::randn({3, 3, 5}, generator);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return concat(in, 0); }, {a, d}, "concat axis 0",
                     kExact, kExact);
  const Tensor e = Tensor::randn({2, 3, 2}, generator);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return concat(in, -1); }, {a, e}, "concat axis -1",
                     kExact, kExact);
}

// The caching allocator on a device it has filled with blocks of one size, all cached: a block of another
// size does not fit until the cache is emptied, which the allocator does before it gives up
// (tensor/allocator.cpp); and the failed first attempt is not reported again by the next kernel launch.
TEST_F(TensorCuda, AllocationOnAFullDeviceEmptiesTheCacheAndRetries) {
  constexpr std::int64_t kBlock = std::int64_t{1} << 28;  // floats: 1 GiB
  constexpr std::size_t kMostBlocks = 1024;               // more memory than any GPU has
  std::vector<Tensor> blocks;
  try {
    while (blocks.size() < kMostBlocks)
      blocks.push_back(Tensor::empty({kBlock}, DType::Float32, kGpu));
  } catch (const CudaError&) {  // the device is full
  }
  ASSERT_FALSE(blocks.empty());
  ASSERT_LT(blocks.size(), kMostBlocks);
  blocks.clear();  // into the cache: the device stays full
  Tensor larger;
  EXPECT_NO_THROW(larger = Tensor::empty({kBlock + kBlock / 2}, DType::Float32, kGpu));
  larger = Tensor();
  empty_cache(kGpu);
  EXPECT_TRUE(matches_cpu(add_scalar(Tensor::ones({5}).to(kGpu), 1.0f), add_scalar(Tensor::ones({5}), 1.0f),
                          kExact, "an op after the retried allocation"));
}

// ---- Elementwise arithmetic ----

struct BinaryCase {
  std::string name;
  Tensor (*op)(const Tensor&, const Tensor&);
};

const std::vector<BinaryCase> kBinaryOps = {{"add", &add}, {"sub", &sub}, {"mul", &mul}, {"div", &div}};

// Operands for every binary op: the denominator of div is kept in [0.5, 2] (with random sign via a), away
// from 0, where the quotient and its gradient would be ill-conditioned on both devices alike.
void check_binary_ops(const Shape& shape_a, const Shape& shape_b, const testing::Tolerance& gradient) {
  Generator generator(4);
  const Tensor a = Tensor::randn(shape_a, generator);
  const Tensor b = Tensor::uniform(shape_b, generator, 0.5f, 2.0f);
  for (const BinaryCase& c : kBinaryOps)
    expect_matches_cpu([&c](const std::vector<Tensor>& in) { return c.op(in[0], in[1]); }, {a, b},
                       c.name + " " + detail::concat(shape_a) + " with " + detail::concat(shape_b),
                       kElementwise, gradient);
}

TEST_F(ArithmeticCuda, SameShapeMatchesCpu) {
  // Same shapes: the gradients are elementwise too.
  check_binary_ops({7, 13}, {7, 13}, kElementwise);
  check_binary_ops({100003}, {100003}, kElementwise);
}

TEST_F(ArithmeticCuda, BroadcastingMatchesCpu) {
  // Broadcast backward sums the gradient over the broadcast axes: a reduction.
  check_binary_ops({4, 1, 5}, {3, 1}, kAccumulated);
  check_binary_ops({3, 1}, {4, 1, 5}, kAccumulated);
  check_binary_ops({2, 3, 4, 5}, {5}, kAccumulated);
  check_binary_ops({64, 32, 8, 8}, {1, 32, 1, 1}, kAccumulated);  // a per-channel scale, as in batch norm
  check_binary_ops({6, 7}, {}, kAccumulated);                     // a rank-0 operand
}

TEST_F(ArithmeticCuda, ScalarOpsAndNegationMatchCpu) {
  Generator generator(5);
  const Tensor x = Tensor::randn({9, 31}, generator);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return add_scalar(in[0], 1.5f); }, {x}, "add_scalar",
                     kElementwise, kElementwise);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return mul_scalar(in[0], -2.25f); }, {x},
                     "mul_scalar", kElementwise, kElementwise);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return neg(in[0]); }, {x}, "neg", kExact, kExact);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return 3.0f - in[0] / 7.0f; }, {x},
                     "3 - x / 7 (scalar operators)", kElementwise, kElementwise);
}

TEST_F(ArithmeticCuda, ExpAndLogMatchCpu) {
  Generator generator(6);
  const Tensor x = Tensor::randn({17, 23}, generator, 0.0f, 2.0f);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return exp(in[0]); }, {x}, "exp", kElementwise,
                     kElementwise);
  const Tensor positive = Tensor::uniform({17, 23}, generator, 0.1f, 3.0f);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return log(in[0]); }, {positive}, "log",
                     kElementwise, kElementwise);
}

// ---- Reductions and activations ----

TEST_F(ReductionCuda, SumAndMeanOverAxesAndAllMatchCpu) {
  Generator generator(7);
  const Tensor x = Tensor::randn({6, 7, 9}, generator);
  struct Case {
    std::string name;
    std::vector<std::int64_t> axes;
    bool keepdim;
  };
  const std::vector<Case> cases = {{"all", {}, false},          {"axis 0", {0}, false},
                                   {"axis 1", {1}, false},      {"axis 2", {2}, false},
                                   {"axes 0,2", {0, 2}, false}, {"axis 1 keepdim", {1}, true},
                                   {"axis -1", {-1}, false}};
  for (const Case& c : cases) {
    // The gradient of a sum is the output gradient broadcast back: a copy, no arithmetic to round.
    expect_matches_cpu([&c](const std::vector<Tensor>& in) { return sum(in[0], c.axes, c.keepdim); }, {x},
                       "sum " + c.name, kAccumulated, kExact);
    expect_matches_cpu([&c](const std::vector<Tensor>& in) { return mean(in[0], c.axes, c.keepdim); }, {x},
                       "mean " + c.name, kAccumulated, kElementwise);
  }
  // Long enough for a multi-block reduction tree on the GPU.
  const Tensor large = Tensor::randn({1000, 300}, generator);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return sum(in[0]); }, {large}, "sum of 300,000",
                     kAccumulated, kExact);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return sum(in[0], {0}); }, {large},
                     "sum over 1000 rows", kAccumulated, kExact);
}

TEST_F(ActivationCuda, ReluSigmoidAndAddReluMatchCpu) {
  // randn never gives exactly 0, so relu's kink is not hit.
  Generator generator(8);
  const Tensor x = Tensor::randn({13, 41}, generator, 0.0f, 3.0f);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return relu(in[0]); }, {x}, "relu", kExact, kExact);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return sigmoid(in[0]); }, {x}, "sigmoid",
                     kElementwise, kElementwise);
  const Tensor shortcut = Tensor::randn({13, 41}, generator, 0.0f, 3.0f);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return add_relu(in[0], in[1]); }, {x, shortcut},
                     "add_relu", kExact, kExact);
}

// ---- Matrix products ----

struct MatmulShape {
  std::int64_t M, K, N;
};

// Ragged against any tile size: 1, primes, and sizes just past powers of two.
const std::vector<MatmulShape> kMatmulShapes = {
    {1, 1, 1}, {37, 53, 29}, {64, 128, 96}, {5, 300, 7}, {65, 33, 129}};

std::string matmul_name(const char* what, const MatmulShape& s) {
  return detail::concat(what, " [", s.M, ",", s.K, "]x[", s.K, ",", s.N, "]");
}

// Plain, batched and transposed-view products over kMatmulShapes, each against the CPU with `tolerance`.
void check_matmuls(const testing::Tolerance& tolerance, const std::string& setting) {
  Generator generator(9);
  for (const MatmulShape& s : kMatmulShapes) {
    const Tensor a = Tensor::randn({s.M, s.K}, generator), b = Tensor::randn({s.K, s.N}, generator);
    expect_matches_cpu([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {a, b},
                       matmul_name("matmul", s) + setting, tolerance, tolerance);
    // Stored transposed and passed as transposed views: the GEMM receives transposed operands.
    const Tensor a_t = Tensor::randn({s.K, s.M}, generator), b_t = Tensor::randn({s.N, s.K}, generator);
    expect_matches_cpu(
        [](const std::vector<Tensor>& in) { return matmul(in[0].transpose(0, 1), in[1].transpose(0, 1)); },
        {a_t, b_t}, matmul_name("matmul of transposed views", s) + setting, tolerance, tolerance);
    const Tensor batch_a = Tensor::randn({3, s.M, s.K}, generator);
    const Tensor batch_b_t = Tensor::randn({3, s.N, s.K}, generator);
    expect_matches_cpu([](const std::vector<Tensor>& in) { return matmul(in[0], in[1].transpose(1, 2)); },
                       {batch_a, batch_b_t}, matmul_name("batched matmul (3), b transposed", s) + setting,
                       tolerance, tolerance);
  }
}

TEST_F(MatmulCuda, PlainBatchedAndTransposedMatchCpu) {
  check_matmuls(kAccumulated, "");
}

TEST_F(MatmulCuda, CublasBackendMatchesCpu) {
  const testing::ScopedGemmBackend cublas(kernels::cuda::GemmBackend::Cublas);
  check_matmuls(kAccumulated, " (cuBLAS)");
}

TEST_F(MatmulCuda, Tf32MatchesCpuWithinTf32Tolerance) {
  const testing::ScopedMathMode tf32(kernels::cuda::MathMode::TF32);
  check_matmuls(kTf32, " (TF32)");
  const testing::ScopedGemmBackend cublas(kernels::cuda::GemmBackend::Cublas);
  check_matmuls(kTf32, " (TF32, cuBLAS)");
}

TEST_F(MatmulCuda, Bf16MatchesCpuWithinBf16Tolerance) {
  const testing::ScopedMathMode bf16(kernels::cuda::MathMode::BF16);
  check_matmuls(kBf16, " (BF16)");
  const testing::ScopedGemmBackend cublas(kernels::cuda::GemmBackend::Cublas);
  check_matmuls(kBf16, " (BF16, cuBLAS)");
}

TEST_F(LinearCuda, MatchesCpuWithAndWithoutBias) {
  Generator generator(10);
  const Tensor x = Tensor::randn({9, 23}, generator), weight = Tensor::randn({11, 23}, generator),
               bias = Tensor::randn({11}, generator);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); },
                     {x, weight, bias}, "linear 23->11 with bias", kAccumulated, kAccumulated);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return linear(in[0], in[1]); }, {x, weight},
                     "linear 23->11 without bias", kAccumulated, kAccumulated);
}

// ---- Convolution ----

struct ConvCase {
  std::string name;
  std::int64_t N, C, H, W, K, R, S;
  Conv2dOptions options;
  bool bias;
};

Conv2dOptions conv_options(std::int64_t stride, std::int64_t padding, std::int64_t dilation = 1) {
  return {stride, stride, padding, padding, dilation, dilation};
}

// The shapes ResNet uses and the awkward ones: 1×1, stride 2, 7×7 stem, dilation, rectangular filters with
// different strides per axis, batch 1, and odd extents that leave ragged tiles everywhere. In FP32 the 3×3
// stride-1 cases with 64 channels and filters run by Winograd; inputs of up to 8 channels take the
// few-channel input gradient; in TF32 and BF16 the forward and input gradient read channels-last copies
// where the counts are multiples of 4 (kernels/cuda/conv2d.cu).
const std::vector<ConvCase> kConvCases = {
    {"3x3 stride 1 padding 1, bias", 2, 3, 8, 8, 4, 3, 3, conv_options(1, 1), true},
    {"3x3 stride 2 padding 1", 2, 4, 9, 9, 6, 3, 3, conv_options(2, 1), false},
    {"3x3 stride 2 no padding", 2, 4, 10, 10, 6, 3, 3, conv_options(2, 0), false},
    {"1x1 stride 2, no bias", 2, 8, 10, 10, 16, 1, 1, conv_options(2, 0), false},
    {"1x1 stride 1, bias", 3, 6, 5, 7, 5, 1, 1, conv_options(1, 0), true},
    {"7x7 stride 2 padding 3", 1, 3, 20, 20, 8, 7, 7, conv_options(2, 3), false},
    {"3x3 dilation 2 padding 2", 2, 3, 12, 12, 5, 3, 3, conv_options(1, 2, 2), true},
    {"odd sizes N=3 C=5 11x13 K=7", 3, 5, 11, 13, 7, 3, 3, conv_options(1, 1), true},
    {"odd sizes, stride 2", 3, 5, 11, 13, 7, 3, 3, conv_options(2, 1), false},
    {"3x5 filter, strides 2/1, padding 1/2", 2, 3, 9, 11, 4, 3, 5, {2, 1, 1, 2, 1, 1}, true},
    {"batch 1, 33 channels", 1, 33, 6, 6, 17, 3, 3, conv_options(1, 1), false},
    // Channel and filter counts in fours past the few-channel kernel's 8: the tensor cores' channels-last
    // copies, forward and input gradient, with a stride, dilation and ragged edges.
    {"12 channels, stride 2, dilation 2, K 8", 2, 12, 11, 10, 8, 3, 3, conv_options(2, 2, 2), true},
    {"16 channels, odd sizes, K 12", 3, 16, 9, 7, 12, 3, 3, conv_options(1, 1), false},
    // 64 channels and filters: Winograd's three passes in FP32, with ragged tiles and no padding (the input
    // gradient's turned padding 2).
    {"64 channels, 11x9, no padding, K 64, bias", 2, 64, 11, 9, 64, 3, 3, conv_options(1, 0), true},
    // More than 64 filters (the products' 128-row blocks in the forward and weight gradient) and more than
    // 64 channels (in the input gradient, whose filters and channels trade places), with channel chunks that
    // end off a multiple of 32.
    {"64 channels, 10x10, padding 1, K 128", 2, 64, 10, 10, 128, 3, 3, conv_options(1, 1), false},
    {"72 channels, 7x9, padding 1, K 64, bias", 1, 72, 7, 9, 64, 3, 3, conv_options(1, 1), true},
};

// conv2d over `cases` on both devices, with a bias input only where the case has one.
void check_convolutions(const std::vector<ConvCase>& cases, const testing::Tolerance& tolerance,
                        const std::string& setting) {
  Generator generator(11);
  for (const ConvCase& c : cases) {
    std::vector<Tensor> inputs = {Tensor::randn({c.N, c.C, c.H, c.W}, generator),
                                  Tensor::randn({c.K, c.C, c.R, c.S}, generator, 0.0f, 0.2f)};
    if (c.bias) inputs.push_back(Tensor::randn({c.K}, generator));
    const Conv2dOptions options = c.options;
    expect_matches_cpu(
        [options](const std::vector<Tensor>& in) {
          return conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), options);
        },
        inputs, "conv2d " + c.name + setting, tolerance, tolerance);
  }
}

const ConvCase kResNetConv = {
    "ResNet stage N=8 C=64 32x32 K=64", 8, 64, 32, 32, 64, 3, 3, conv_options(1, 1), false};

TEST_F(ConvCuda, ForwardAndBackwardMatchCpu) {
  check_convolutions(kConvCases, kAccumulated, "");
}

// Every pass as the plain product on the NCHW tensors, in FP32 and TF32.
TEST_F(ConvCuda, DirectBackendMatchesCpu) {
  const testing::ScopedConvBackend direct(kernels::cuda::ConvBackend::Direct);
  check_convolutions(kConvCases, kAccumulated, " (direct)");
  check_convolutions({kResNetConv}, kAccumulated, " (direct)");
  const testing::ScopedMathMode tf32(kernels::cuda::MathMode::TF32);
  check_convolutions(kConvCases, kTf32, " (direct, TF32)");
  check_convolutions({kResNetConv}, kTf32, " (direct, TF32)");
}

TEST_F(ConvCuda, ResNetSizedShapeMatchesCpu) {
  check_convolutions({kResNetConv}, kAccumulated, "");
}

TEST_F(ConvCuda, Tf32MatchesCpuWithinTf32Tolerance) {
  const testing::ScopedMathMode tf32(kernels::cuda::MathMode::TF32);
  check_convolutions(kConvCases, kTf32, " (TF32)");
  check_convolutions({kResNetConv}, kTf32, " (TF32)");
}

TEST_F(ConvCuda, Bf16MatchesCpuWithinBf16Tolerance) {
  const testing::ScopedMathMode bf16(kernels::cuda::MathMode::BF16);
  check_convolutions(kConvCases, kBf16, " (BF16)");
  check_convolutions({kResNetConv}, kBf16, " (BF16)");
}

// BF16 products are exact products of operands rounded to bfloat16 (to nearest, ties to even, as
// kernels/bfloat16.h rounds), summed in float: every pass on float operands equals the CPU's float pass on
// the rounded operands within float summation's tolerance (kAccumulated, 1e-4 of the largest value), while
// the rounding itself moves these results by about 2e-3 of it (measured on the CPU, both strides, all three
// passes). A pass that ran in TF32 or FP32 under BF16, or rounded another way, fails. On 16 channels and
// filters and a width of 16, where every pass runs on the tensor cores (kernels/cuda/conv2d.cu).
TEST_F(ConvCuda, Bf16ProductsAreFloatSumsOfRoundedOperands) {
  const testing::ScopedMathMode bf16(kernels::cuda::MathMode::BF16);
  Generator generator(13);
  const auto rounded = [](const Tensor& t) { return cast(cast(t, DType::BFloat16), DType::Float32); };
  const Tensor x = Tensor::randn({4, 16, 12, 16}, generator),
               w = Tensor::randn({16, 16, 3, 3}, generator, 0.0f, 0.2f);
  for (const std::int64_t stride : {1, 2}) {
    const Conv2dOptions options = conv_options(stride, 1);
    const Tensor x_cpu = dense_copy(rounded(x)).set_requires_grad(true),
                 w_cpu = dense_copy(rounded(w)).set_requires_grad(true);
    const Tensor y_cpu = conv2d(x_cpu, w_cpu, Tensor(), options);
    const Tensor grad_y = Tensor::randn(y_cpu.shape(), generator);
    y_cpu.backward(rounded(grad_y));
    const Tensor x_gpu = x.to(kGpu).set_requires_grad(true), w_gpu = w.to(kGpu).set_requires_grad(true);
    const Tensor y_gpu = conv2d(x_gpu, w_gpu, Tensor(), options);
    y_gpu.backward(grad_y.to(kGpu));
    const std::string context = "BF16 conv2d on rounded operands, stride " + std::to_string(stride);
    EXPECT_TRUE(matches_cpu(y_gpu, y_cpu, kAccumulated, context + ": y"));
    EXPECT_TRUE(matches_cpu(x_gpu.grad(), x_cpu.grad(), kAccumulated, context + ": grad x"));
    EXPECT_TRUE(matches_cpu(w_gpu.grad(), w_cpu.grad(), kAccumulated, context + ": grad w"));
  }
}

TEST_F(ConvCuda, CudnnInBf16IsRefusedWithAReason) {
  if (!kernels::cuda::cudnn_built()) GTEST_SKIP() << "this build has no cuDNN";
  const testing::ScopedConvBackend cudnn(kernels::cuda::ConvBackend::Cudnn);
  const testing::ScopedMathMode bf16(kernels::cuda::MathMode::BF16);
  Generator generator(12);
  const Tensor x = Tensor::randn({1, 2, 5, 5}, generator).to(Device::cuda()),
               w = Tensor::randn({3, 2, 3, 3}, generator).to(Device::cuda());
  testing::expect_error<std::exception>([&] { conv2d(x, w, Tensor(), conv_options(1, 1)); },
                                        {"bf16", "cuDNN"});
}

TEST_F(ConvCuda, CublasGemmBackendMatchesCpu) {
  // Convolutions that run as GEMMs take the cuBLAS path here; the others must be unaffected.
  const testing::ScopedGemmBackend cublas(kernels::cuda::GemmBackend::Cublas);
  check_convolutions(kConvCases, kAccumulated, " (cuBLAS GEMM)");
}

TEST_F(ConvCuda, CudnnBackendMatchesCpu) {
  if (!kernels::cuda::cudnn_built()) GTEST_SKIP() << "this build has no cuDNN";
  const testing::ScopedConvBackend cudnn(kernels::cuda::ConvBackend::Cudnn);
  check_convolutions(kConvCases, kAccumulated, " (cuDNN)");
  check_convolutions({kResNetConv}, kAccumulated, " (cuDNN)");
}

// ---- Batch normalisation ----

TEST_F(BatchNormCuda, TrainingMatchesCpuIncludingRunningStatistics) {
  Generator generator(12);
  const Shape shape{4, 6, 5, 7};
  const Tensor x = Tensor::randn(shape, generator, 1.0f, 2.0f);
  const Tensor weight = Tensor::randn({6}, generator), bias = Tensor::randn({6}, generator);
  const Tensor mean = Tensor::randn({6}, generator), variance = Tensor::uniform({6}, generator, 0.5f, 2.0f);
  // Each device updates its own copy of the running statistics; the function picks by its input's device.
  const Tensor cpu_mean = dense_copy(mean), cpu_variance = dense_copy(variance);
  const Tensor gpu_mean = mean.to(kGpu), gpu_variance = variance.to(kGpu);
  expect_matches_cpu(
      [&](const std::vector<Tensor>& in) {
        const bool on_cpu = in[0].device().is_cpu();
        return batch_norm2d(in[0], in[1], in[2], on_cpu ? cpu_mean : gpu_mean,
                            on_cpu ? cpu_variance : gpu_variance, /*training=*/true, 0.1f, 1e-5f);
      },
      {x, weight, bias}, "batch_norm2d training [4,6,5,7]", kAccumulated, kAccumulated);
  EXPECT_TRUE(matches_cpu(gpu_mean, cpu_mean, kAccumulated, "running_mean"));
  EXPECT_TRUE(matches_cpu(gpu_variance, cpu_variance, kAccumulated, "running_var"));

  // A ResNet-sized batch: the statistics reduce over 8·32·32 = 8192 values per channel.
  const Tensor large = Tensor::randn({8, 64, 32, 32}, generator, 0.5f, 1.5f);
  const Tensor gamma = Tensor::randn({64}, generator), beta = Tensor::randn({64}, generator);
  expect_matches_cpu(
      [](const std::vector<Tensor>& in) {
        return batch_norm2d(in[0], in[1], in[2], Tensor(), Tensor(), /*training=*/true);
      },
      {large, gamma, beta}, "batch_norm2d training [8,64,32,32], no running statistics", kAccumulated,
      kAccumulated);
}

TEST_F(BatchNormCuda, FusedReluMatchesCpu) {
  Generator generator(14);
  const Tensor x = Tensor::randn({4, 6, 9, 7}, generator, 0.5f, 1.5f);
  const Tensor weight = Tensor::randn({6}, generator), bias = Tensor::randn({6}, generator);
  expect_matches_cpu(
      [](const std::vector<Tensor>& in) {
        return batch_norm2d_relu(in[0], in[1], in[2], Tensor(), Tensor(), /*training=*/true);
      },
      {x, weight, bias}, "batch_norm2d_relu training [4,6,9,7]", kAccumulated, kAccumulated);
  // Planes a multiple of 4 long take the float4 kernels, with the mask read four at a time.
  const Tensor wide = Tensor::randn({4, 6, 8, 6}, generator, 0.5f, 1.5f);
  expect_matches_cpu(
      [](const std::vector<Tensor>& in) {
        return batch_norm2d_relu(in[0], in[1], in[2], Tensor(), Tensor(), /*training=*/true);
      },
      {wide, weight, bias}, "batch_norm2d_relu training [4,6,8,6]", kAccumulated, kAccumulated);
}

// The residual added before the ReLU in the forward kernel (one and four values at a time), the mask from
// the output in the backward.
TEST_F(BatchNormCuda, FusedAddReluMatchesCpu) {
  Generator generator(15);
  const Tensor weight = Tensor::randn({6}, generator), bias = Tensor::randn({6}, generator);
  for (const Shape& shape : {Shape{4, 6, 9, 7}, Shape{4, 6, 8, 6}}) {
    const Tensor x = Tensor::randn(shape, generator, 0.5f, 1.5f), residual = Tensor::randn(shape, generator);
    expect_matches_cpu(
        [](const std::vector<Tensor>& in) {
          return batch_norm2d_add_relu(in[0], in[1], in[2], Tensor(), Tensor(), in[3], /*training=*/true);
        },
        {x, weight, bias, residual},
        (std::ostringstream() << "batch_norm2d_add_relu training " << shape).str(), kAccumulated,
        kAccumulated);
  }
}

TEST_F(BatchNormCuda, EvaluationMatchesCpu) {
  Generator generator(13);
  const Tensor x = Tensor::randn({3, 5, 6, 4}, generator);
  const Tensor weight = Tensor::randn({5}, generator), bias = Tensor::randn({5}, generator);
  const Tensor mean = Tensor::randn({5}, generator), variance = Tensor::uniform({5}, generator, 0.5f, 2.0f);
  const Tensor gpu_mean = mean.to(kGpu), gpu_variance = variance.to(kGpu);
  expect_matches_cpu(
      [&](const std::vector<Tensor>& in) {
        const bool on_cpu = in[0].device().is_cpu();
        return batch_norm2d(in[0], in[1], in[2], on_cpu ? mean : gpu_mean, on_cpu ? variance : gpu_variance,
                            /*training=*/false);
      },
      {x, weight, bias}, "batch_norm2d evaluation [3,5,6,4]", kElementwise, kAccumulated);
  EXPECT_TRUE(matches_cpu(gpu_mean, mean, kExact, "running_mean unchanged in evaluation"));
}

// ---- Pooling ----

TEST_F(PoolCuda, MaxPoolWithOverlappingWindowsMatchesCpu) {
  // randn gives no ties, so the maximum of each window is unique on both devices. The output picks values
  // and is exact; an input in several overlapping windows sums their gradients, in an order that may differ.
  Generator generator(14);
  const Pool2dOptions stem{3, 3, 2, 2, 1, 1};
  for (const Shape& shape : {Shape{2, 3, 11, 13}, Shape{8, 16, 32, 32}}) {
    const Tensor x = Tensor::randn(shape, generator);
    expect_matches_cpu([&stem](const std::vector<Tensor>& in) { return max_pool2d(in[0], stem); }, {x},
                       "max_pool2d 3x3 stride 2 padding 1", kExact, kAccumulated);
  }
  const Tensor x = Tensor::randn({2, 3, 9, 10}, generator);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return max_pool2d(in[0], Pool2dOptions{}); }, {x},
                     "max_pool2d 2x2 stride 2 (odd height)", kExact, kExact);
}

TEST_F(PoolCuda, AveragePoolMatchesCpu) {
  Generator generator(15);
  const Tensor x = Tensor::randn({2, 3, 11, 13}, generator);
  const Pool2dOptions overlapping{3, 3, 2, 2, 1, 1};
  expect_matches_cpu([&](const std::vector<Tensor>& in) { return avg_pool2d(in[0], overlapping); }, {x},
                     "avg_pool2d 3x3 stride 2 padding 1", kAccumulated, kAccumulated);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return avg_pool2d(in[0], Pool2dOptions{}); }, {x},
                     "avg_pool2d 2x2 stride 2", kAccumulated, kAccumulated);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return global_avg_pool2d(in[0]); }, {x},
                     "global_avg_pool2d", kAccumulated, kAccumulated);
}

// ---- Mixed precision: bfloat16 activations ----

// The functions below cast their activation to bfloat16 on the way in and their result back to float32 on
// the way out, so the comparison (and the gradients of the float32 leaves) sees every rounding in between.

TEST_F(MixedPrecisionCuda, CastIsTheCpusBitForBit) {
  Generator generator(41);
  // Values over many binades, so the rounding meets every exponent; 40000 crosses several GPU blocks.
  const Tensor x = Tensor::randn({40000}, generator) * exp(Tensor::randn({40000}, generator, 0.0f, 8.0f));
  expect_matches_cpu(
      [](const std::vector<Tensor>& in) { return cast(cast(in[0], DType::BFloat16), DType::Float32); }, {x},
      "cast to bfloat16 and back", kExact, kExact);
}

TEST_F(MixedPrecisionCuda, ResNetLayersOnBFloat16ActivationsMatchCpu) {
  Generator generator(42);
  const auto in_bf16 = [](const Tensor& x) { return cast(x, DType::BFloat16); };
  const auto out_f32 = [](const Tensor& y) { return cast(y, DType::Float32); };
  const Tensor x = Tensor::randn({4, 8, 12, 10}, generator);
  const Tensor weight = Tensor::randn({16, 8, 3, 3}, generator, 0.0f, 0.2f),
               bias = Tensor::randn({16}, generator);
  Conv2dOptions same;
  same.padding_h = same.padding_w = 1;
  expect_matches_cpu(
      [&](const std::vector<Tensor>& in) { return out_f32(conv2d(in_bf16(in[0]), in[1], in[2], same)); },
      {x, weight, bias}, "conv2d on bfloat16 [4,8,12,10]", kBf16Storage, kBf16StorageGradient);
  {
    const AutocastGuard autocast(DType::BFloat16);  // the same, with conv2d casting its float32 input itself
    expect_matches_cpu(
        [&](const std::vector<Tensor>& in) { return out_f32(conv2d(in[0], in[1], in[2], same)); },
        {x, weight, bias}, "conv2d under autocast", kBf16Storage, kBf16StorageGradient);
  }
  // On the tensor cores the passes read layout copies made from the bfloat16 activations and round their
  // results as they store them (kernels/cuda/conv2d.cu): the products' tolerance (kTf32, kBf16) on top of
  // the storage's, stride 1 and 2 (the input gradient's phases), on a width of 16 so that the weight
  // gradient's shifted copies fit too (Q a multiple of 4 at both strides), and on 16 channels, past the
  // few-channel kernel that takes the input gradient of 8.
  const Tensor wide = Tensor::randn({4, 16, 12, 16}, generator);
  const Tensor wide_weight = Tensor::randn({16, 16, 3, 3}, generator, 0.0f, 0.2f);
  const testing::Tolerance tf32_storage{1e-5, 8e-3, 1e-2}, bf16_storage{1e-5, 1.6e-2, 4e-2};
  for (const auto& [math, tolerance] : {std::pair{kernels::cuda::MathMode::TF32, tf32_storage},
                                        std::pair{kernels::cuda::MathMode::BF16, bf16_storage}}) {
    const testing::ScopedMathMode mode(math);
    for (const std::int64_t stride : {1, 2}) {
      Conv2dOptions options = same;
      options.stride_h = options.stride_w = stride;
      expect_matches_cpu(
          [&](const std::vector<Tensor>& in) {
            return out_f32(conv2d(in_bf16(in[0]), in[1], in[2], options));
          },
          {wide, wide_weight, bias},
          std::string("conv2d on bfloat16, ") + kernels::cuda::name_of(math) + " products, stride " +
              std::to_string(stride),
          tolerance, tolerance);
    }
  }
  const Tensor gamma = Tensor::randn({8}, generator), beta = Tensor::randn({8}, generator);
  const Tensor residual = Tensor::randn({4, 8, 12, 10}, generator);
  expect_matches_cpu(
      [&](const std::vector<Tensor>& in) {
        return out_f32(batch_norm2d_add_relu(in_bf16(in[0]), in[1], in[2], Tensor(), Tensor(), in_bf16(in[3]),
                                             /*training=*/true));
      },
      {x, gamma, beta, residual}, "batch_norm2d_add_relu on bfloat16", kBf16Storage, kBf16StorageGradient);
  expect_matches_cpu(
      [&](const std::vector<Tensor>& in) {
        return out_f32(
            batch_norm2d_relu(in_bf16(in[0]), in[1], in[2], Tensor(), Tensor(), /*training=*/true));
      },
      {x, gamma, beta}, "batch_norm2d_relu on bfloat16", kBf16Storage, kBf16StorageGradient);
  // Planes of 35: the batch norm's kernels one value at a time (above, 120: four at a time, 8-byte loads).
  const Tensor ragged = Tensor::randn({3, 8, 5, 7}, generator, 0.5f, 1.5f);
  expect_matches_cpu(
      [&](const std::vector<Tensor>& in) {
        return out_f32(batch_norm2d(in_bf16(in[0]), in[1], in[2], Tensor(), Tensor(), /*training=*/true));
      },
      {ragged, gamma, beta}, "batch_norm2d on bfloat16, planes of 35", kBf16Storage, kBf16StorageGradient);
  // Evaluation mode, with running statistics on the device the input is on.
  const Tensor mean = Tensor::randn({8}, generator), variance = Tensor::uniform({8}, generator, 0.5f, 2.0f);
  const Tensor gpu_mean = mean.to(kGpu), gpu_variance = variance.to(kGpu);
  for (const auto& [input, planes] : {std::pair{x, "120"}, std::pair{ragged, "35"}})
    expect_matches_cpu(
        [&](const std::vector<Tensor>& in) {
          const bool on_cpu = in[0].device().is_cpu();
          return out_f32(batch_norm2d(in_bf16(in[0]), in[1], in[2], on_cpu ? mean : gpu_mean,
                                      on_cpu ? variance : gpu_variance, /*training=*/false));
        },
        {input, gamma, beta}, std::string("batch_norm2d evaluation on bfloat16, planes of ") + planes,
        kBf16Storage, kBf16StorageGradient);
  expect_matches_cpu([&](const std::vector<Tensor>& in) { return out_f32(relu(in_bf16(in[0]))); }, {ragged},
                     "relu on bfloat16", kExact, kExact);
  const Pool2dOptions stem{3, 3, 2, 2, 1, 1};
  expect_matches_cpu([&](const std::vector<Tensor>& in) { return out_f32(max_pool2d(in_bf16(in[0]), stem)); },
                     {x}, "max_pool2d on bfloat16", kExact, kBf16StorageGradient);
  expect_matches_cpu(
      [&](const std::vector<Tensor>& in) { return out_f32(global_avg_pool2d(in_bf16(in[0]))); }, {x},
      "global_avg_pool2d on bfloat16", kBf16Storage, kBf16StorageGradient);
  expect_matches_cpu([&](const std::vector<Tensor>& in) { return out_f32(avg_pool2d(in_bf16(in[0]), stem)); },
                     {ragged}, "avg_pool2d 3x3 stride 2 padding 1 on bfloat16", kBf16Storage,
                     kBf16StorageGradient);
}

// ---- Softmax and losses ----

TEST_F(LogSoftmaxCuda, MatchesCpuAlongEveryAxis) {
  Generator generator(16);
  const Tensor x = Tensor::randn({13, 37}, generator, 0.0f, 4.0f);
  for (std::int64_t axis : {-1, 0})
    expect_matches_cpu([axis](const std::vector<Tensor>& in) { return log_softmax(in[0], axis); }, {x},
                       "log_softmax axis " + std::to_string(axis), kAccumulated, kAccumulated);
  const Tensor cube = Tensor::randn({4, 5, 6}, generator);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return log_softmax(in[0], 1); }, {cube},
                     "log_softmax of [4,5,6] axis 1", kAccumulated, kAccumulated);
  // A row longer than one thread block, with large logits that overflow exp without the max subtracted.
  const Tensor wide = Tensor::randn({64, 1000}, generator, 50.0f, 10.0f);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return log_softmax(in[0]); }, {wide},
                     "log_softmax [64,1000] around 50", kAccumulated, kAccumulated);
  expect_matches_cpu([](const std::vector<Tensor>& in) { return softmax(in[0]); }, {x}, "softmax",
                     kAccumulated, kAccumulated);
}

TEST_F(CrossEntropyCuda, EveryOptionMatchesCpu) {
  Generator generator(17);
  const std::int64_t N = 16, classes = 7;
  const Tensor logits = Tensor::randn({N, classes}, generator, 0.0f, 2.0f);
  const Tensor targets = random_labels(N, classes, generator);
  const Tensor class_weights = Tensor::uniform({classes}, generator, 0.2f, 2.0f);
  struct Case {
    std::string name;
    bool weighted;
    float smoothing;
    Reduction reduction;
  };
  const std::vector<Case> cases = {
      {"plain, mean", false, 0.0f, Reduction::Mean},
      {"plain, sum", false, 0.0f, Reduction::Sum},
      {"class weights, mean", true, 0.0f, Reduction::Mean},
      {"class weights, sum", true, 0.0f, Reduction::Sum},
      {"label smoothing, mean", false, 0.1f, Reduction::Mean},
      {"label smoothing, sum", false, 0.1f, Reduction::Sum},
      {"weights and smoothing, mean", true, 0.2f, Reduction::Mean},
  };
  for (const Case& c : cases)
    expect_matches_cpu(
        [&](const std::vector<Tensor>& in) {
          CrossEntropyOptions options;
          if (c.weighted) options.class_weights = class_weights.to(in[0].device());
          options.label_smoothing = c.smoothing;
          options.reduction = c.reduction;
          return cross_entropy(in[0], in[1], options);
        },
        {logits, targets}, "cross_entropy " + c.name, kAccumulated, kAccumulated);
}

// ---- Dropout ----

TEST_F(DropoutCuda, MaskIsTheCpusBitForBit) {
  // Both devices draw one seed from the generator and evaluate the same counter-based generator per element
  // (kernels/dropout.h), so the same seed must drop exactly the same elements. 1,048,579 elements: many
  // blocks, and a ragged last one.
  for (const Shape& shape : {Shape{37, 129}, Shape{1048579}}) {
    const Tensor ones = Tensor::ones(shape);
    Generator cpu_generator(18), gpu_generator(18);
    const Tensor cpu_mask = dropout(ones, 0.3f, /*training=*/true, cpu_generator);
    const Tensor gpu_mask = dropout(ones.to(kGpu), 0.3f, /*training=*/true, gpu_generator);
    EXPECT_TRUE(matches_cpu(gpu_mask, cpu_mask, kExact, "dropout mask p=0.3"));
    EXPECT_EQ(gpu_generator.next_u64(), cpu_generator.next_u64()) << "both must draw the same amount";
  }
  Generator generator(19);
  const Tensor x = Tensor::randn({23, 45}, generator);
  expect_matches_cpu(
      [](const std::vector<Tensor>& in) {
        Generator seeded(20);
        return dropout(in[0], 0.5f, /*training=*/true, seeded);
      },
      {x}, "dropout p=0.5", kElementwise, kElementwise);
}

}  // namespace
}  // namespace dscope
