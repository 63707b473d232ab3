// conv2d on the CPU at the ResNet layer shapes we train (3×3 filters with padding 1, and the 1×1 stride-2
// shortcuts): the small-stem ResNet-18's at batch 32 (the 3×3 ones are the shapes benchmarks/compare_torch
// compares with PyTorch) and the ResNet-8's at batch 64.
//
// conv2d_forward and conv2d_forward_backward run through the op, as a training step does, with the variant
// the kernels choose (kernels/conv2d.h); benchmarks/compare_torch compares those two with PyTorch. Below
// them every kernel variant runs alone: <pass>_im2col_gemm and, where the geometry allows it,
// <pass>_winograd and <pass>_direct, for pass = forward, backward_input, backward_weight.
//
// GFLOP/s counts 2·N·K·P·Q·C·R·S operations per pass: one multiply and one add per filter tap per output
// element, the count of direct convolution whatever the algorithm (Winograd does fewer, so its figure is
// an effective rate). The input and weight gradients cost the same count, so forward+backward is three
// passes. Before a shape is timed, every variant is checked once against the double-precision reference
// on a batch of 2 (the reference needs minutes at batch 32). Time is wall-clock: the kernels use every core.
#include <benchmark/benchmark.h>

#include <cmath>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/conv2d.h"
#include "tensor/ops/all.h"

namespace dscope {
namespace {

struct Layer {
  std::int64_t C, H, K, R, stride;  // square H×H input, R×R filter, padding R / 2
  std::int64_t batch;
};

const Layer kLayers[] = {
    // small-stem ResNet-18 (64/128/256/512), batch 32
    {3, 64, 64, 3, 1, 32},
    {64, 64, 64, 3, 1, 32},
    {64, 64, 128, 3, 2, 32},
    {128, 32, 128, 3, 1, 32},
    {256, 16, 256, 3, 1, 32},
    {512, 8, 512, 3, 1, 32},
    {64, 64, 128, 1, 2, 32},
    // ResNet-8 (16/32/64), batch 64
    {3, 64, 16, 3, 1, 64},
    {16, 64, 16, 3, 1, 64},
    {16, 64, 32, 3, 2, 64},
    {32, 32, 32, 3, 1, 64},
    {32, 32, 64, 3, 2, 64},
    {64, 16, 64, 3, 1, 64},
    {16, 64, 32, 1, 2, 64},
    {32, 32, 64, 1, 2, 64},
};

// The shape as it appears in benchmark names and in compare_torch, e.g. N32_C64_K128_64x64_3x3_s2.
std::string label(const Layer& layer) {
  std::ostringstream out;
  out << "N" << layer.batch << "_C" << layer.C << "_K" << layer.K << "_" << layer.H << "x" << layer.H << "_"
      << layer.R << "x" << layer.R << "_s" << layer.stride;
  return out.str();
}

kernels::Conv2dGeometry geometry_of(const Layer& layer, std::int64_t batch) {
  kernels::Conv2dGeometry g;
  g.N = batch, g.C = layer.C, g.H = g.W = layer.H, g.K = layer.K, g.R = g.S = layer.R;
  g.stride_h = g.stride_w = layer.stride, g.pad_h = g.pad_w = layer.R / 2;
  g.P = kernels::conv2d_output_size(g.H, g.R, g.stride_h, g.pad_h, g.dilation_h);
  g.Q = kernels::conv2d_output_size(g.W, g.S, g.stride_w, g.pad_w, g.dilation_w);
  return g;
}

double flops_per_pass(const kernels::Conv2dGeometry& g) {
  return 2.0 * static_cast<double>(g.N * g.K * g.P * g.Q) * static_cast<double>(g.C * g.R * g.S);
}

// The three kernels of one variant, and the geometries it accepts.
struct Variant {
  const char* name;
  bool (*supports)(const kernels::Conv2dGeometry&);
  void (*forward)(const kernels::Conv2dGeometry&, const float*, const float*, const float*, float*,
                  const kernels::cpu::Conv2dEpilogue&);
  void (*backward_input)(const kernels::Conv2dGeometry&, const float*, const float*, float*);
  void (*backward_weight)(const kernels::Conv2dGeometry&, const float*, const float*, float*);
};

bool always(const kernels::Conv2dGeometry&) {
  return true;
}

const Variant kVariants[] = {
    {"im2col_gemm", always, kernels::cpu::conv2d_forward_im2col_gemm,
     kernels::cpu::conv2d_backward_input_im2col_gemm, kernels::cpu::conv2d_backward_weight_im2col_gemm},
    {"winograd", kernels::cpu::conv2d_winograd_supports, kernels::cpu::conv2d_forward_winograd,
     kernels::cpu::conv2d_backward_input_winograd, kernels::cpu::conv2d_backward_weight_winograd},
    {"direct", kernels::cpu::conv2d_direct_supports, kernels::cpu::conv2d_forward_direct,
     kernels::cpu::conv2d_backward_input_direct, kernels::cpu::conv2d_backward_weight_direct},
};

std::vector<float> random_values(std::int64_t count, Generator& generator) {
  std::vector<float> values(static_cast<std::size_t>(count));
  for (float& value : values)
    value = generator.normal();
  return values;
}

// Empty when the float result is within tolerance of the double one, else the first mismatch. Each value
// sums `depth` products of unit normal values, so its spread is √depth; Winograd F(4×4, 3×3) rounds to
// about 4e-5 of that spread (kernels/cpu/conv2d_winograd.cpp), so the absolute tolerance grows with it.
std::string mismatch(const std::string& pass, const std::vector<float>& actual,
                     const std::vector<double>& expected, std::int64_t depth) {
  const double absolute = 1e-3 + 1e-4 * std::sqrt(static_cast<double>(depth));
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double error = std::abs(static_cast<double>(actual[i]) - expected[i]);
    if (!(error <= absolute + 1e-4 * std::abs(expected[i]))) {
      std::ostringstream out;
      out << pass << " differs from the reference at element " << i << ": " << actual[i] << " vs "
          << expected[i];
      return out.str();
    }
  }
  return "";
}

// Checks every variant's kernels, and the choosing entry points, against the reference on a batch of 2,
// once per layer; empty when they all agree.
const std::string& reference_check(const Layer& layer) {
  static std::map<std::string, std::string> results;
  const auto found = results.find(label(layer));
  if (found != results.end()) return found->second;
  const kernels::Conv2dGeometry g = geometry_of(layer, 2);
  Generator generator(7);
  const std::vector<float> x = random_values(g.N * g.C * g.H * g.W, generator);
  const std::vector<float> w = random_values(g.K * g.C * g.R * g.S, generator);
  const std::vector<float> grad_y = random_values(g.N * g.K * g.P * g.Q, generator);
  const std::vector<double> xd(x.begin(), x.end()), wd(w.begin(), w.end()),
      grad_y_d(grad_y.begin(), grad_y.end());
  std::vector<double> y_d(grad_y.size()), grad_x_d(x.size()), grad_w_d(w.size());
  kernels::reference::conv2d_forward<double>(g, xd.data(), wd.data(), nullptr, y_d.data());
  kernels::reference::conv2d_backward_input<double>(g, grad_y_d.data(), wd.data(), grad_x_d.data());
  kernels::reference::conv2d_backward_weight<double>(g, xd.data(), grad_y_d.data(), grad_w_d.data());

  const Variant chosen = {"chosen", always, kernels::cpu::conv2d_forward, kernels::cpu::conv2d_backward_input,
                          kernels::cpu::conv2d_backward_weight};
  std::vector<Variant> variants = {chosen};
  variants.insert(variants.end(), std::begin(kVariants), std::end(kVariants));
  std::string result;
  for (const Variant& variant : variants) {
    if (!variant.supports(g)) continue;
    std::vector<float> y(grad_y.size()), grad_x(x.size()), grad_w(w.size());
    variant.forward(g, x.data(), w.data(), nullptr, y.data(), kernels::cpu::Conv2dActivation::none);
    variant.backward_input(g, grad_y.data(), w.data(), grad_x.data());
    variant.backward_weight(g, x.data(), grad_y.data(), grad_w.data());
    const std::string name = variant.name;
    if (result.empty()) result = mismatch(name + " forward", y, y_d, g.C * g.R * g.S);
    if (result.empty()) result = mismatch(name + " backward_input", grad_x, grad_x_d, g.K * g.R * g.S);
    if (result.empty()) result = mismatch(name + " backward_weight", grad_w, grad_w_d, g.N * g.P * g.Q);
  }
  return results.emplace(label(layer), result).first->second;
}

void report(benchmark::State& state, double flops_per_iteration) {
  state.counters["GFLOP/s"] = benchmark::Counter(
      1e-9 * flops_per_iteration * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

Conv2dOptions options_of(const Layer& layer) {
  Conv2dOptions options;
  options.stride_h = options.stride_w = layer.stride;
  options.padding_h = options.padding_w = layer.R / 2;
  return options;
}

void op_forward(benchmark::State& state, const Layer& layer) {
  if (const std::string& error = reference_check(layer); !error.empty())
    return state.SkipWithError(error.c_str());
  const kernels::Conv2dGeometry g = geometry_of(layer, layer.batch);
  Generator generator(1);
  const Tensor x = Tensor::randn({g.N, g.C, g.H, g.W}, generator);
  const Tensor w = Tensor::randn({g.K, g.C, g.R, g.S}, generator, 0.0f, 0.05f);
  for (auto _ : state) {
    const Tensor y = conv2d(x, w, Tensor(), options_of(layer));
    benchmark::DoNotOptimize(y.data<float>());
  }
  report(state, flops_per_pass(g));
}

void op_forward_backward(benchmark::State& state, const Layer& layer) {
  if (const std::string& error = reference_check(layer); !error.empty())
    return state.SkipWithError(error.c_str());
  const kernels::Conv2dGeometry g = geometry_of(layer, layer.batch);
  Generator generator(2);
  Tensor x = Tensor::randn({g.N, g.C, g.H, g.W}, generator);
  Tensor w = Tensor::randn({g.K, g.C, g.R, g.S}, generator, 0.0f, 0.05f);
  const Tensor grad_y = Tensor::randn({g.N, g.K, g.P, g.Q}, generator);
  x.set_requires_grad(true);
  w.set_requires_grad(true);
  for (auto _ : state) {
    x.set_grad(Tensor());  // as a training step does: fresh gradients, not accumulated ones
    w.set_grad(Tensor());
    conv2d(x, w, Tensor(), options_of(layer)).backward(grad_y);
    benchmark::DoNotOptimize(w.grad().data<float>());
  }
  report(state, 3.0 * flops_per_pass(g));
}

// The buffers of one kernel benchmark, filled outside the timing loop.
struct Buffers {
  explicit Buffers(const kernels::Conv2dGeometry& g) {
    Generator generator(3);
    x = random_values(g.N * g.C * g.H * g.W, generator);
    w = random_values(g.K * g.C * g.R * g.S, generator);
    y = random_values(g.N * g.K * g.P * g.Q, generator);
  }
  std::vector<float> x, w, y;  // y doubles as grad_y
};

void kernel_forward(benchmark::State& state, const Layer& layer, const Variant& variant) {
  if (const std::string& error = reference_check(layer); !error.empty())
    return state.SkipWithError(error.c_str());
  const kernels::Conv2dGeometry g = geometry_of(layer, layer.batch);
  Buffers buffers(g);
  for (auto _ : state) {
    variant.forward(g, buffers.x.data(), buffers.w.data(), nullptr, buffers.y.data(),
                    kernels::cpu::Conv2dActivation::none);
    benchmark::DoNotOptimize(buffers.y.data());
  }
  report(state, flops_per_pass(g));
}

void kernel_backward_input(benchmark::State& state, const Layer& layer, const Variant& variant) {
  if (const std::string& error = reference_check(layer); !error.empty())
    return state.SkipWithError(error.c_str());
  const kernels::Conv2dGeometry g = geometry_of(layer, layer.batch);
  Buffers buffers(g);
  for (auto _ : state) {
    variant.backward_input(g, buffers.y.data(), buffers.w.data(), buffers.x.data());
    benchmark::DoNotOptimize(buffers.x.data());
  }
  report(state, flops_per_pass(g));
}

void kernel_backward_weight(benchmark::State& state, const Layer& layer, const Variant& variant) {
  if (const std::string& error = reference_check(layer); !error.empty())
    return state.SkipWithError(error.c_str());
  const kernels::Conv2dGeometry g = geometry_of(layer, layer.batch);
  Buffers buffers(g);
  for (auto _ : state) {
    variant.backward_weight(g, buffers.x.data(), buffers.y.data(), buffers.w.data());
    benchmark::DoNotOptimize(buffers.w.data());
  }
  report(state, flops_per_pass(g));
}

void register_benchmarks() {
  const auto add = [](const std::string& name, auto function, auto... arguments) {
    benchmark::RegisterBenchmark(name.c_str(), function, arguments...)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  };
  for (const Layer& layer : kLayers)
    add("conv2d_forward/" + label(layer), op_forward, layer);
  for (const Layer& layer : kLayers)
    add("conv2d_forward_backward/" + label(layer), op_forward_backward, layer);
  using Kernel = void (*)(benchmark::State&, const Layer&, const Variant&);
  const std::pair<const char*, Kernel> passes[] = {{"conv2d_forward_", kernel_forward},
                                                   {"conv2d_backward_input_", kernel_backward_input},
                                                   {"conv2d_backward_weight_", kernel_backward_weight}};
  for (const auto& [pass, kernel] : passes)
    for (const Variant& variant : kVariants)
      for (const Layer& layer : kLayers)
        if (variant.supports(geometry_of(layer, layer.batch)))
          add(pass + std::string(variant.name) + "/" + label(layer), kernel, layer, variant);
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
