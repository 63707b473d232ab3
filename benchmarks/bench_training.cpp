// Whole-model speed on the CPU: one training step (training-mode forward, cross-entropy, backward, SGD with
// momentum) and one inference pass (evaluation mode, no graph), for the two models the issue names, on
// 3×64×64 images (the lesion crops we train on) with 7 classes (HAM10000's):
//   ResNet-8, small stem, widths 16/32/64, one BasicBlock per stage, batch 64;
//   ResNet-18, small stem, widths 64/128/256/512, BasicBlocks [2,2,2,2], batch 32;
// and the network `dscope build` trains by default (apps/lib/build_recipe.h), so that what users wait for is
// measured too: resnet8_quick, ResNet-8 at width 1.5 (24/48/96), batch 64. Its 24- and 48-channel layers
// and its 48 → 96 and 96 → 96 ones take other kernel variants than the 16/32/64 of the ResNet-8.
// items_per_second is images per second. GFLOP/s counts only convolutions and the classifier (batch norm,
// ReLU and pooling are a few percent): 2·P·Q·K·C·R·S per conv and image in the forward, tripled for training
// (forward, input gradient, weight gradient). Time is wall-clock, as the kernels use every core.
//
// Correctness is not re-checked here against a reference: tests/nn/test_nn_golden.cpp matches this model's
// training step to PyTorch's. Before timing, each benchmark runs one untimed step (allocations, first-touch
// page faults) and checks that its loss or logits are finite.
// benchmarks/compare_torch runs the same models through PyTorch and prints the ratios.
#include <benchmark/benchmark.h>

#include <cmath>
#include <string>
#include <vector>

#include "benchmarks/resnet_flops.h"
#include "nn/resnet.h"
#include "optim/sgd.h"
#include "tensor/ops/all.h"

namespace dscope {
namespace {

constexpr std::int64_t kClasses = 7, kImageSize = 64;

struct Model {
  const char* name;  // as in benchmark names and in compare_torch
  int depth;
  std::int64_t batch;
  float width_multiplier;
};

const Model kModels[] = {
    {"resnet8", 8, 64, 1.0f}, {"resnet18", 18, 32, 1.0f}, {"resnet8_quick", 8, 64, 1.5f}};

nn::ResNetConfig config_of(const Model& model) {
  nn::ResNetConfig config =
      nn::resnet_config(model.depth, kClasses, nn::StemKind::Small, model.width_multiplier);
  config.seed = 1;
  return config;
}

struct Batch {
  Tensor images, labels;
};

Batch random_batch(std::int64_t batch) {
  Generator generator(2);
  std::vector<std::int64_t> labels(static_cast<std::size_t>(batch));
  for (std::int64_t& label : labels)
    label = static_cast<std::int64_t>(generator.below(kClasses));
  return {Tensor::randn({batch, 3, kImageSize, kImageSize}, generator), Tensor::from_int64(labels, {batch})};
}

void report(benchmark::State& state, const Model& model, double passes) {
  const auto images = static_cast<double>(state.iterations() * model.batch);
  state.SetItemsProcessed(state.iterations() * model.batch);
  state.counters["GFLOP/s"] =
      benchmark::Counter(1e-9 * passes * forward_flops_per_image(config_of(model), kImageSize) * images,
                         benchmark::Counter::kIsRate);
}

void training_step(benchmark::State& state, const Model& model) {
  nn::ResNet network(config_of(model));
  const Batch batch = random_batch(model.batch);
  optim::Sgd optimizer(network.parameters(), 0.01f, 5e-4f, {.momentum = 0.9f});
  auto step = [&] {
    optimizer.zero_grad();
    const Tensor loss = cross_entropy(network(batch.images), batch.labels);
    loss.backward();
    optimizer.step();
    return loss.item<float>();
  };
  if (!std::isfinite(step())) return state.SkipWithError("the untimed first step gave a non-finite loss");
  for (auto _ : state)
    benchmark::DoNotOptimize(step());
  report(state, model, 3.0);
}

void inference(benchmark::State& state, const Model& model) {
  nn::ResNet network(config_of(model));
  network.eval();
  const Batch batch = random_batch(model.batch);
  NoGradGuard no_grad;
  for (float value : network(batch.images).to_vector<float>())
    if (!std::isfinite(value)) return state.SkipWithError("the untimed first pass gave non-finite logits");
  for (auto _ : state) {
    const Tensor logits = network(batch.images);
    benchmark::DoNotOptimize(logits.data<float>());
  }
  report(state, model, 1.0);
}

// Names read <pass>/<model>/N<batch>_3x<size>x<size>, e.g. training_step/resnet18/N32_3x64x64.
void register_all() {
  for (const Model& model : kModels) {
    const std::string shape = "/N" + std::to_string(model.batch) + "_3x" + std::to_string(kImageSize) + "x" +
                              std::to_string(kImageSize);
    benchmark::RegisterBenchmark(("training_step/" + std::string(model.name) + shape).c_str(), training_step,
                                 model)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(2.0);
    benchmark::RegisterBenchmark(("inference/" + std::string(model.name) + shape).c_str(), inference, model)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(2.0);
  }
}

}  // namespace
}  // namespace dscope

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  dscope::register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
