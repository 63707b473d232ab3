// Training on the GPU against training on the CPU: the optimizers' updates (SGD with Nesterov momentum and
// weight decay, Adam, AdamW) and gradient clipping from the same gradients, Module::to moving a model in
// place, and the model-level check: a ResNet-8 trained five SGD steps on each device from the same weights
// and batches gives the same losses and the same final weights (in float32; with bfloat16, losses and
// updates that agree within what rounding explains).
//
// Without a CUDA device every test skips with a reason.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/linear.h"
#include "nn/resnet.h"
#include "optim/adam.h"
#include "optim/clip.h"
#include "optim/sgd.h"
#include "tensor/autograd/grad_mode.h"
#include "tensor/ops/all.h"
#include "tests/cuda/cuda_comparison.h"

namespace dscope {
namespace {

using testing::kElementwise;
using testing::kExact;
using testing::matches_cpu;

using OptimizerCuda = testing::CudaTest;
using ModuleCuda = testing::CudaTest;
using TrainingCuda = testing::CudaTest;

const Device kGpu = Device::cuda();

// Parameters of mixed ranks and ragged sizes, on the CPU and as equal copies on the GPU.
struct ParameterPair {
  std::vector<Tensor> cpu, gpu;
};

ParameterPair random_parameters(Generator& generator) {
  ParameterPair pair;
  for (const Shape& shape : {Shape{5, 7}, Shape{13}, Shape{2, 3, 4, 4}, Shape{1}}) {
    const Tensor value = Tensor::randn(shape, generator);
    pair.cpu.push_back(dense_copy(value).set_requires_grad(true));
    pair.gpu.push_back(value.to(kGpu).set_requires_grad(true));
  }
  return pair;
}

// Gives each parameter the same random gradient on both devices: the optimizer, not autograd, is under test.
void set_random_gradients(ParameterPair& pair, Generator& generator) {
  for (std::size_t i = 0; i < pair.cpu.size(); ++i) {
    const Tensor grad = Tensor::randn(pair.cpu[i].shape(), generator);
    pair.cpu[i].set_grad(grad);
    pair.gpu[i].set_grad(grad.to(kGpu));
  }
}

// Parameters and every state tensor agree within rtol 1e-5 (kElementwise): an update is a few elementwise
// operations per element, so the devices may differ only by rounding.
void expect_same_state(const ParameterPair& pair, const optim::Optimizer& cpu, const optim::Optimizer& gpu,
                       const std::string& context) {
  for (std::size_t i = 0; i < pair.cpu.size(); ++i)
    EXPECT_TRUE(
        matches_cpu(pair.gpu[i], pair.cpu[i], kElementwise, context + ": parameter " + std::to_string(i)));
  const std::map<std::string, Tensor> cpu_state = cpu.state_dict(), gpu_state = gpu.state_dict();
  ASSERT_EQ(cpu_state.size(), gpu_state.size()) << context;
  for (const auto& [name, value] : cpu_state) {
    const Tensor& other = gpu_state.at(name);
    if (value.dtype() == DType::Int64) {
      EXPECT_EQ(other.item<std::int64_t>(), value.item<std::int64_t>()) << context << ": " << name;
    } else {
      EXPECT_TRUE(matches_cpu(other, value, kElementwise, context + ": state " + name));
    }
  }
}

TEST_F(OptimizerCuda, SgdWithNesterovMomentumAndWeightDecayMatchesCpu) {
  Generator generator(31);
  ParameterPair pair = random_parameters(generator);
  const optim::SgdOptions options{0.9f, /*nesterov=*/true};
  optim::Sgd cpu(pair.cpu, 0.1f, 1e-2f, options), gpu(pair.gpu, 0.1f, 1e-2f, options);
  for (int step = 0; step < 4; ++step) {
    set_random_gradients(pair, generator);
    cpu.step();
    gpu.step();
  }
  expect_same_state(pair, cpu, gpu, "SGD after 4 steps");
}

TEST_F(OptimizerCuda, AdamAndAdamWMatchCpu) {
  for (bool decoupled : {false, true}) {
    Generator generator(32);
    ParameterPair pair = random_parameters(generator);
    std::unique_ptr<optim::Optimizer> cpu, gpu;
    if (decoupled) {
      cpu = std::make_unique<optim::AdamW>(pair.cpu, 1e-2f, 1e-2f);
      gpu = std::make_unique<optim::AdamW>(pair.gpu, 1e-2f, 1e-2f);
    } else {
      cpu = std::make_unique<optim::Adam>(pair.cpu, 1e-2f, 1e-2f);
      gpu = std::make_unique<optim::Adam>(pair.gpu, 1e-2f, 1e-2f);
    }
    for (int step = 0; step < 4; ++step) {
      set_random_gradients(pair, generator);
      cpu->step();
      gpu->step();
    }
    expect_same_state(pair, *cpu, *gpu, decoupled ? "AdamW after 4 steps" : "Adam after 4 steps");
  }
}

TEST_F(OptimizerCuda, ClipGradNormMatchesCpu) {
  Generator generator(33);
  ParameterPair pair = random_parameters(generator);
  set_random_gradients(pair, generator);
  // A generous limit leaves the gradients as they are; a tight one scales them all by one factor.
  for (float max_norm : {1e6f, 0.5f}) {
    const float cpu_norm = optim::clip_grad_norm(pair.cpu, max_norm);
    const float gpu_norm = optim::clip_grad_norm(pair.gpu, max_norm);
    EXPECT_NEAR(gpu_norm, cpu_norm, 1e-5 * cpu_norm) << "max_norm " << max_norm;
    for (std::size_t i = 0; i < pair.cpu.size(); ++i)
      EXPECT_TRUE(
          matches_cpu(pair.gpu[i].grad(), pair.cpu[i].grad(), kElementwise,
                      "clipped gradient " + std::to_string(i) + ", max_norm " + std::to_string(max_norm)));
  }
}

TEST_F(OptimizerCuda, GradientOnAnotherDeviceThrowsDeviceError) {
  Generator generator(34);
  ParameterPair pair = random_parameters(generator);
  optim::Sgd sgd(pair.gpu, 0.1f);
  pair.gpu[0].set_grad(Tensor::ones(pair.gpu[0].shape()));  // on the CPU
  EXPECT_THROW(sgd.step(), DeviceError);
}

// ---- Module::to ----

nn::ResNetConfig small_resnet8() {
  nn::ResNetConfig config = nn::resnet_config(8, 3, nn::StemKind::Small, 0.5f);  // stages 8/16/32 wide
  config.seed = 35;
  return config;
}

TEST_F(ModuleCuda, ToMovesParametersAndBuffersInPlace) {
  nn::ResNet reference(small_resnet8()), model(small_resnet8());
  const std::vector<Tensor> handles = model.parameters();
  model.to(kGpu);
  const std::vector<Tensor> moved = model.parameters();
  ASSERT_EQ(moved.size(), handles.size());
  for (std::size_t i = 0; i < moved.size(); ++i) {
    EXPECT_TRUE(moved[i].same(handles[i])) << "parameter " << i << " must keep its identity";
    EXPECT_TRUE(moved[i].requires_grad()) << i;
  }
  const std::map<std::string, Tensor> expected = reference.state_dict();
  for (const auto& [name, tensor] : model.state_dict()) {
    if (tensor.dtype() == DType::Int64) {
      EXPECT_EQ(tensor.device(), Device::cpu()) << name << ": integer buffers stay on the host";
      continue;
    }
    EXPECT_TRUE(matches_cpu(tensor, expected.at(name), kExact, name));
  }
  // A training forward on the GPU updates the host-side batch counter and the device-side statistics.
  Generator generator(36);
  model(Tensor::randn({2, 3, 16, 16}, generator).to(kGpu));
  EXPECT_EQ(model.state_dict().at("bn1.num_batches_tracked").item<std::int64_t>(), 1);
  EXPECT_EQ(model.state_dict().at("bn1.running_mean").device(), kGpu);
}

// In evaluation mode without a graph each convolution runs with its batch norm folded in
// (nn/conv_batch_norm.h), through conv2d_relu and conv2d_add_relu: the GPU's logits are the CPU's.
TEST_F(ModuleCuda, EvaluationWithFoldedBatchNormsMatchesCpu) {
  nn::ResNet model(small_resnet8());
  Generator generator(39);
  for (int step = 0; step < 2; ++step)  // running statistics that are not the initial zeros and ones
    model(Tensor::randn({4, 3, 16, 16}, generator));
  model.eval();
  const NoGradGuard no_grad;
  const Tensor images = Tensor::randn({4, 3, 16, 16}, generator);
  const Tensor expected = model(images);
  model.to(kGpu);
  EXPECT_TRUE(matches_cpu(model(images.to(kGpu)), expected, testing::kAccumulated, "ResNet-8 logits, eval"));
}

TEST_F(ModuleCuda, OptimizerStateOnTheOldDeviceThrowsDeviceError) {
  Generator generator(37);
  nn::Linear layer(4, 3, generator);
  optim::Sgd sgd(layer.parameters(), 0.1f, 0.0f, optim::SgdOptions{0.9f});
  const Tensor x = Tensor::randn({2, 4}, generator);
  sum(layer(x)).backward();
  sgd.step();  // creates the momentum buffers on the CPU
  sgd.zero_grad();
  layer.to(kGpu);
  sum(layer(x.to(kGpu))).backward();
  EXPECT_THROW(sgd.step(), DeviceError);
}

// ---- A model trained on both devices ----

// Relative agreement of the losses, and agreement of each final parameter within 1e-3·max|p|: five steps of
// SGD through a dozen layers amplify rounding differences (batch statistics, summation order) from 1e-7 to
// around 1e-5, so 1e-3 separates rounding from a wrong gradient, which moves weights by the learning rate.
constexpr double kLossTolerance = 1e-3;
constexpr double kParameterTolerance = 1e-3;
// With bf16 products or activations every convolution is off by about 4e-3 of its terms
// (tests/cuda/cuda_comparison.h), so the losses agree to about 1e-2. The parameters are compared by what
// the five steps did to them, not by their values: a batch norm's bias starts at zero, so its value is its
// update, and the update, a sum over the batch, moves by tens of percent when every operand is rounded.
// Measured on the CPU alone with this recipe, ‖update − other update‖ / ‖other update‖ at worst, per
// tensor: 0.035 between autocast on 1 and 2 threads; 0.23 between float32 and autocast, or float32 with the
// convolutions' weights rounded to bfloat16; 0.28 between autocast with and without the weights rounded;
// 0.34 between float32 and both. A tensor whose gradient is zeroed or doubled at every step: 0.68 to 1.1.
// Hence a limit of 0.5.
constexpr double kBf16LossTolerance = 3e-2;
constexpr double kBf16UpdateDifference = 0.5;

// Whether `gpu` and `cpu`, a tensor after training on each device, moved from `initial` alike, within
// kBf16UpdateDifference.
::testing::AssertionResult updates_agree(const Tensor& gpu, const Tensor& cpu, const Tensor& initial,
                                         const std::string& name) {
  const std::vector<float> on_gpu = gpu.to(Device::cpu()).to_vector<float>(), on_cpu = cpu.to_vector<float>(),
                           start = initial.to_vector<float>();
  double squared_difference = 0, squared_update = 0;
  for (std::size_t i = 0; i < start.size(); ++i) {
    const double gpu_update = on_gpu[i] - start[i], cpu_update = on_cpu[i] - start[i];
    squared_difference += (gpu_update - cpu_update) * (gpu_update - cpu_update);
    squared_update += cpu_update * cpu_update;
  }
  const double difference = std::sqrt(squared_difference), update = std::sqrt(squared_update);
  if (difference <= kBf16UpdateDifference * update) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << name << ": the GPU's update differs from the CPU's by "
                                       << difference << " (norm of the CPU's update " << update << ")";
}

// How the final state of the two devices is compared: element by element (float32), or by updates (bf16).
enum class StateCheck { Values, Updates };

// Five SGD steps of one ResNet-8 on each device, the losses and final parameters compared.
void train_on_both_devices(double loss_tolerance, StateCheck check) {
  // Built twice from the same seed: the same initial weights on both devices.
  nn::ResNet cpu_model(small_resnet8()), gpu_model(small_resnet8());
  gpu_model.to(kGpu);  // before the optimizer is created, as Module::to requires
  const optim::SgdOptions options{0.9f, /*nesterov=*/true};
  optim::Sgd cpu_sgd(cpu_model.parameters(), 0.05f, 5e-4f, options);
  optim::Sgd gpu_sgd(gpu_model.parameters(), 0.05f, 5e-4f, options);

  Generator data(38);
  for (int step = 0; step < 5; ++step) {
    const Tensor images = Tensor::randn({8, 3, 16, 16}, data);
    std::vector<std::int64_t> labels;
    for (int i = 0; i < 8; ++i)
      labels.push_back(static_cast<std::int64_t>(data.below(3)));
    const Tensor targets = Tensor::from_int64(labels, {8});

    const Tensor cpu_loss = cross_entropy(cpu_model(images), targets);
    const Tensor gpu_loss = cross_entropy(gpu_model(images.to(kGpu)), targets.to(kGpu));
    ASSERT_EQ(gpu_loss.device(), kGpu);
    const float expected = cpu_loss.item<float>(), got = gpu_loss.item<float>();
    EXPECT_NEAR(got, expected, loss_tolerance * std::abs(expected)) << "loss of step " << step;

    cpu_sgd.zero_grad();
    gpu_sgd.zero_grad();
    cpu_loss.backward();
    gpu_loss.backward();
    cpu_sgd.step();
    gpu_sgd.step();
  }

  const std::map<std::string, Tensor> expected = cpu_model.state_dict(),
                                      initial = nn::ResNet(small_resnet8()).state_dict();
  for (const auto& [name, tensor] : gpu_model.state_dict()) {
    const Tensor& reference = expected.at(name);
    if (tensor.dtype() == DType::Int64) {
      EXPECT_EQ(tensor.item<std::int64_t>(), reference.item<std::int64_t>()) << name;
      continue;
    }
    if (check == StateCheck::Values)
      EXPECT_TRUE(matches_cpu(tensor, reference, testing::Tolerance{0.0, 0.0, kParameterTolerance}, name));
    else
      EXPECT_TRUE(updates_agree(tensor, reference, initial.at(name), name));
  }
}

TEST_F(TrainingCuda, ResNet8FiveSgdStepsMatchCpu) {
  train_on_both_devices(kLossTolerance, StateCheck::Values);
}

TEST_F(TrainingCuda, ResNet8FiveSgdStepsWithBf16ProductsStayCloseToCpu) {
  const testing::ScopedMathMode bf16(kernels::cuda::MathMode::BF16);
  train_on_both_devices(kBf16LossTolerance, StateCheck::Updates);
}

// Mixed precision on both devices (bfloat16 activations, float32 master weights): the activations round to
// about 4e-3 of themselves, where the devices' float32 results differ in the last bits a rounding can land
// one step apart, so the agreement is that of bf16 products. With bf16 products on the GPU as well (what
// `dscope build --precision bf16` runs), the CPU's float32 products are the reference still.
TEST_F(TrainingCuda, ResNet8FiveSgdStepsWithBf16ActivationsStayCloseToCpu) {
  const AutocastGuard autocast(DType::BFloat16);
  train_on_both_devices(kBf16LossTolerance, StateCheck::Updates);
  const testing::ScopedMathMode bf16(kernels::cuda::MathMode::BF16);
  train_on_both_devices(kBf16LossTolerance, StateCheck::Updates);
}

}  // namespace
}  // namespace dscope
