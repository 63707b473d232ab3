// Whole-model speed on the GPU: one training step (training-mode forward, cross-entropy, backward, SGD with
// momentum) of the small-stem ResNet-18 (widths 64/128/256/512, BasicBlocks [2,2,2,2]) at batch 256 on
// random 3×64×64 images with 7 classes, our own CUDA kernels in FP32, TF32 and BF16 (MathMode,
// kernels/cuda/settings.h): `own` with float tensors (in BF16 only the products' operands are bf16), and
// in BF16 also `own_autocast`, mixed precision as `dscope build --precision bf16` trains and as PyTorch's
// bf16 autocast runs: activations and their gradients stored in bfloat16 too (tensor/autocast.h). The
// structure is bench_training.cpp's, at a batch that fills a GPU. benchmarks/torch_cuda_reference.py times
// the same step in PyTorch, and benchmarks/gpu_compare.py joins both by name:
// training_step/resnet18/N256_3x64x64/<fp32|tf32|bf16>/<own|own_autocast>.
//
// images/s is images per second; TFLOP/s counts only convolutions and the classifier, three passes per
// step (see bench_training.cpp for the formula); peak MiB is the most memory our allocator had handed out
// during the timed steps (weights, momentum, the batch, a step's activations) and scratch peak MiB the most
// the kernels' scratch buffers held (their sum bounds our footprint from above), beside PyTorch's
// max_memory_allocated in the reference, which counts its cuDNN workspaces too. Each step ends with
// loss.item(), a copy to the host that waits for the GPU, so wall-clock time covers the whole step.
// Correctness is left to the tests (tests/cuda); here the untimed first step only has to give a finite loss.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <exception>
#include <string>
#include <vector>

#include "benchmarks/resnet_flops.h"
#include "kernels/cuda/device_memory.h"
#include "kernels/cuda/settings.h"
#include "nn/resnet.h"
#include "optim/sgd.h"
#include "tensor/allocator.h"
#include "tensor/ops/all.h"

namespace dscope {
namespace {

namespace cuda = kernels::cuda;

constexpr std::int64_t kClasses = 7, kImageSize = 64, kBatch = 256;
constexpr int kDepth = 18;

nn::ResNetConfig config() {
  nn::ResNetConfig result = nn::resnet_config(kDepth, kClasses, nn::StemKind::Small);
  result.seed = 1;
  return result;
}

void training_step(benchmark::State& state, cuda::MathMode math, DType activations) {
  if (!cuda_is_available()) return state.SkipWithError("no CUDA device");
  // A failure on the device (a missing kernel, a CUDA error) fails this benchmark, not the whole run.
  try {
    cuda::set_math_mode(math);
    const AutocastGuard autocast(activations);
    nn::ResNet network(config());
    network.to(Device::cuda());  // before the optimizer, which keeps its momentum where the parameters are
    Generator generator(2);
    std::vector<std::int64_t> labels(static_cast<std::size_t>(kBatch));
    for (std::int64_t& label : labels)
      label = static_cast<std::int64_t>(generator.below(kClasses));
    const Tensor images = Tensor::randn({kBatch, 3, kImageSize, kImageSize}, generator).to(Device::cuda());
    const Tensor targets = Tensor::from_int64(labels, {kBatch}).to(Device::cuda());
    optim::Sgd optimizer(network.parameters(), 0.01f, 5e-4f, {.momentum = 0.9f});
    auto step = [&] {
      optimizer.zero_grad();
      const Tensor loss = cross_entropy(network(images), targets);
      loss.backward();
      optimizer.step();
      return loss.item<float>();
    };
    // Two untimed steps: the first allocates (and loads the kernels), the second finds the allocator warm.
    if (!std::isfinite(step()) || !std::isfinite(step()))
      return state.SkipWithError("an untimed first step gave a non-finite loss");
    reset_peak_in_use(Device::cuda());
    cuda::reset_scratch_peak(Device::cuda().index);
    double seconds = 0.0;
    for (auto _ : state) {
      const auto start = std::chrono::steady_clock::now();
      benchmark::DoNotOptimize(step());
      const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
      state.SetIterationTime(elapsed.count());
      seconds += elapsed.count();
    }
    const double steps = static_cast<double>(state.iterations());
    state.SetItemsProcessed(state.iterations() * kBatch);
    state.counters["images/s"] = steps * static_cast<double>(kBatch) / seconds;
    state.counters["TFLOP/s"] = 1e-12 * 3.0 * forward_flops_per_image(config(), kImageSize) *
                                static_cast<double>(kBatch) * steps / seconds;
    // Weights, momentum, the batch and a step's activations at their largest (not the allocator's cache), and
    // the kernels' scratch (layout copies, partial sums) at its largest.
    state.counters["peak MiB"] =
        static_cast<double>(allocator_stats(Device::cuda()).peak_in_use_bytes) / 1048576.0;
    state.counters["scratch peak MiB"] =
        static_cast<double>(cuda::scratch_peak_bytes(Device::cuda().index)) / 1048576.0;
  } catch (const std::exception& error) {
    state.SkipWithError(error.what());
  }
}

// Names read training_step/resnet18/N256_3x64x64/<math>/<own|own_autocast>.
void register_benchmarks() {
  const std::string shape =
      "/N" + std::to_string(kBatch) + "_3x" + std::to_string(kImageSize) + "x" + std::to_string(kImageSize);
  const auto add = [&](cuda::MathMode math, DType activations) {
    const std::string name = "training_step/resnet18" + shape + "/" + cuda::name_of(math) +
                             (activations == DType::BFloat16 ? "/own_autocast" : "/own");
    benchmark::RegisterBenchmark(name.c_str(), training_step, math, activations)
        ->Unit(benchmark::kMillisecond)
        ->UseManualTime()
        ->MinTime(1.0);
  };
  for (cuda::MathMode math : {cuda::MathMode::FP32, cuda::MathMode::TF32, cuda::MathMode::BF16})
    add(math, DType::Float32);
  add(cuda::MathMode::BF16, DType::BFloat16);
}

}  // namespace
}  // namespace dscope

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  dscope::register_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
