// conv2d on the GPU at the ResNet layer shapes of bench_conv2d.cpp (3×3 filters, padding 1), at batch 128:
// the three kernels kernels::cuda::conv2d_forward, _backward_input and _backward_weight, each with our own
// kernels and with cuDNN (ConvBackend, kernels/cuda/settings.h; cuDNN only where the build found it), in
// FP32 and TF32 (MathMode), and ours in BF16 as mixed precision trains: bfloat16 activations (x, grad_y
// and the outputs y, grad_x) with float weights, through the bfloat16 entry points (cuDNN has no bf16
// products on float tensors; PyTorch's bf16 convolutions, on bf16 tensors, are the reference). Our plain
// products on the NCHW tensors are timed too (`direct`, in FP32 and TF32), so that each departure of `own`
// from them (Winograd, layout copies, the few-channel input gradient) is measured against what it replaced.
// benchmarks/torch_cuda_reference.py times the same passes through PyTorch (in BF16 on bf16 tensors), and
// benchmarks/gpu_compare.py joins both by name: <pass>/<shape>/<fp32|tf32|bf16>/<own|direct|cudnn>.
//
// TFLOP/s counts 2·N·K·P·Q·C·R·S operations per pass (one multiply and one add per filter tap per output
// element), whatever the algorithm. Before a shape is timed in a setting, the GPU result at batch 2 is
// checked once against kernels::cpu, into outputs filled with NaN so that an unwritten element fails: the
// largest difference over the largest CPU magnitude (so an output that cancels to near zero is not a false
// alarm) must stay below 1e-3 in FP32, 1e-2 in TF32, whose products keep 10 mantissa bits, and 4e-2 in BF16
// (8 bits).
// Time is wall-clock around batches of launches, each followed by one kernels::cuda::synchronize(), as
// manual time (benchmarks/cuda_launch_timing.h).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "benchmarks/cuda_launch_timing.h"
#include "kernels/conv2d.h"
#include "kernels/cuda/settings.h"
#include "tensor/device.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace dscope {
namespace {

namespace cuda = kernels::cuda;

constexpr std::int64_t kBatch = 128, kCheckBatch = 2;

struct Layer {
  std::int64_t C, H, K, stride;  // square H×H input, 3×3 filter, padding 1
};

const Layer kLayers[] = {
    {3, 64, 64, 1}, {64, 64, 64, 1}, {64, 64, 128, 2}, {128, 32, 128, 1}, {256, 16, 256, 1}, {512, 8, 512, 1},
};

enum class Pass { Forward, BackwardInput, BackwardWeight };

struct Setting {
  cuda::ConvBackend backend;
  cuda::MathMode math;
};

const char* name_of(Pass pass) {
  return pass == Pass::Forward         ? "conv2d_forward"
         : pass == Pass::BackwardInput ? "conv2d_backward_input"
                                       : "conv2d_backward_weight";
}

// The shape as in benchmark names, in torch_cuda_reference.py and in bench_conv2d, e.g.
// N128_C64_K128_64x64_3x3_s2.
std::string label(const Layer& layer, std::int64_t batch) {
  std::ostringstream out;
  out << "N" << batch << "_C" << layer.C << "_K" << layer.K << "_" << layer.H << "x" << layer.H << "_3x3_s"
      << layer.stride;
  return out.str();
}

kernels::Conv2dGeometry geometry_of(const Layer& layer, std::int64_t batch) {
  kernels::Conv2dGeometry g;
  g.N = batch, g.C = layer.C, g.H = g.W = layer.H, g.K = layer.K, g.R = g.S = 3;
  g.stride_h = g.stride_w = layer.stride, g.pad_h = g.pad_w = 1;
  g.P = kernels::conv2d_output_size(g.H, g.R, g.stride_h, g.pad_h, g.dilation_h);
  g.Q = kernels::conv2d_output_size(g.W, g.S, g.stride_w, g.pad_w, g.dilation_w);
  return g;
}

double flops_per_pass(const kernels::Conv2dGeometry& g) {
  return 2.0 * static_cast<double>(g.N * g.K * g.P * g.Q) * static_cast<double>(g.C * g.R * g.S);
}

// The tensors of a layer on the GPU: the inputs x, w, grad_y, and the outputs of the three passes, which are
// kept apart so that the inputs stay as drawn, each activation also in bfloat16 (converted on the GPU once,
// for BF16). `poison` fills the outputs with NaN (for the check: an element a kernel did not write then
// fails it); otherwise they are left uninitialised.
struct Buffers {
  Buffers(const kernels::Conv2dGeometry& g, std::uint64_t seed, bool poison) {
    Generator generator(seed);
    x = Tensor::randn({g.N, g.C, g.H, g.W}, generator).to(Device::cuda());
    w = Tensor::randn({g.K, g.C, g.R, g.S}, generator, 0.0f, 0.05f).to(Device::cuda());
    grad_y = Tensor::randn({g.N, g.K, g.P, g.Q}, generator).to(Device::cuda());
    const auto output = [poison](const Shape& shape) {
      return poison ? Tensor::full(shape, std::nanf("")).to(Device::cuda())
                    : Tensor::empty(shape, DType::Float32, Device::cuda());
    };
    y = output(grad_y.shape()), grad_x = output(x.shape()), grad_w = output(w.shape());
    x_bf16 = dense_as(x, DType::BFloat16), grad_y_bf16 = dense_as(grad_y, DType::BFloat16);
    y_bf16 = dense_as(y, DType::BFloat16), grad_x_bf16 = dense_as(grad_x, DType::BFloat16);
  }
  Tensor x, w, grad_y;
  Tensor y, grad_x, grad_w;
  Tensor x_bf16, grad_y_bf16, y_bf16, grad_x_bf16;
};

// Activations in bfloat16 for BF16 (mixed precision), float otherwise.
void launch(Pass pass, const kernels::Conv2dGeometry& g, const Buffers& b, bool bf16) {
  switch (pass) {
    case Pass::Forward:
      if (bf16)
        return cuda::conv2d_forward(g, b.x_bf16.data<BFloat16>(), b.w.data<float>(), nullptr,
                                    b.y_bf16.data<BFloat16>());
      return cuda::conv2d_forward(g, b.x.data<float>(), b.w.data<float>(), nullptr, b.y.data<float>());
    case Pass::BackwardInput:
      if (bf16)
        return cuda::conv2d_backward_input(g, b.grad_y_bf16.data<BFloat16>(), b.w.data<float>(),
                                           b.grad_x_bf16.data<BFloat16>());
      return cuda::conv2d_backward_input(g, b.grad_y.data<float>(), b.w.data<float>(),
                                         b.grad_x.data<float>());
    case Pass::BackwardWeight:
      if (bf16)
        return cuda::conv2d_backward_weight(g, b.x_bf16.data<BFloat16>(), b.grad_y_bf16.data<BFloat16>(),
                                            b.grad_w.data<float>());
      return cuda::conv2d_backward_weight(g, b.x.data<float>(), b.grad_y.data<float>(),
                                          b.grad_w.data<float>());
  }
}

// The same pass on the CPU, on host copies of the inputs the GPU read (rounded to bfloat16 for BF16);
// returns its output.
std::vector<float> launch_cpu(Pass pass, const kernels::Conv2dGeometry& g, const Buffers& b, bool bf16) {
  const auto host = [](const Tensor& t) { return dense_as(t, DType::Float32).to_vector<float>(); };
  const std::vector<float> x = host(bf16 ? b.x_bf16 : b.x), w = host(b.w),
                           grad_y = host(bf16 ? b.grad_y_bf16 : b.grad_y);
  std::vector<float> out;
  switch (pass) {
    case Pass::Forward:
      out.resize(grad_y.size());
      kernels::cpu::conv2d_forward(g, x.data(), w.data(), nullptr, out.data());
      break;
    case Pass::BackwardInput:
      out.resize(x.size());
      kernels::cpu::conv2d_backward_input(g, grad_y.data(), w.data(), out.data());
      break;
    case Pass::BackwardWeight:
      out.resize(w.size());
      kernels::cpu::conv2d_backward_weight(g, x.data(), grad_y.data(), out.data());
      break;
  }
  return out;
}

const Tensor& output_of(Pass pass, const Buffers& b, bool bf16) {
  return pass == Pass::Forward         ? (bf16 ? b.y_bf16 : b.y)
         : pass == Pass::BackwardInput ? (bf16 ? b.grad_x_bf16 : b.grad_x)
                                       : b.grad_w;
}

// The batch-128 buffers of the layer timed last. Benchmarks run layer by layer, so each layer's inputs are
// drawn and copied once rather than once per benchmark (about a second each at 64×64). main releases them
// before exit: device memory must be freed while the CUDA runtime is still up.
struct CachedBuffers {
  std::string label;
  std::unique_ptr<Buffers> buffers;
};
CachedBuffers& cached_buffers() {
  static CachedBuffers cached;
  return cached;
}
const Buffers& timed_buffers(const Layer& layer) {
  CachedBuffers& cached = cached_buffers();
  if (!cached.buffers || cached.label != label(layer, kBatch)) {
    cached.buffers.reset();  // first, so that two layers' buffers are never held at once
    cached.buffers = std::make_unique<Buffers>(geometry_of(layer, kBatch), 1, false);
    cached.label = label(layer, kBatch);
  }
  return *cached.buffers;
}
void release_buffers() {
  cached_buffers().buffers.reset();
}

// Empty when the GPU agrees with the CPU on all three passes at batch 2 in this setting, else what differs.
// Computed once per shape and setting.
const std::string& cpu_check(const Layer& layer, const Setting& setting) {
  static std::map<std::string, std::string> results;
  const std::string key =
      label(layer, kCheckBatch) + cuda::name_of(setting.backend) + cuda::name_of(setting.math);
  if (const auto found = results.find(key); found != results.end()) return found->second;
  const double tolerance = setting.math == cuda::MathMode::FP32   ? 1e-3
                           : setting.math == cuda::MathMode::TF32 ? 1e-2
                                                                  : 4e-2;
  const kernels::Conv2dGeometry g = geometry_of(layer, kCheckBatch);
  std::string result;
  for (Pass pass : {Pass::Forward, Pass::BackwardInput, Pass::BackwardWeight}) {
    const Buffers buffers(g, 7, true);
    const bool bf16 = setting.math == cuda::MathMode::BF16;
    const std::vector<float> expected = launch_cpu(pass, g, buffers, bf16);
    launch(pass, g, buffers, bf16);
    const std::vector<float> actual =
        dense_as(output_of(pass, buffers, bf16), DType::Float32).to_vector<float>();
    double largest = 0.0, error = 0.0;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      largest = std::max(largest, std::abs(static_cast<double>(expected[i])));
      // Written so that a NaN fails: max(error, NaN) would keep error.
      const double difference = std::abs(static_cast<double>(actual[i]) - expected[i]);
      if (!(difference <= error)) error = difference;
    }
    const double relative = error / std::max(largest, 1e-30);
    if (!(relative <= tolerance)) {
      std::ostringstream out;
      out << name_of(pass) << " " << cuda::name_of(setting.backend) << " " << cuda::name_of(setting.math)
          << " differs from kernels::cpu at " << label(layer, kCheckBatch) << ": max error " << error
          << " over max |cpu| " << largest << " = " << relative << " > " << tolerance;
      result = out.str();
      break;
    }
  }
  return results.emplace(key, result).first->second;
}

void time_pass(benchmark::State& state, const Layer& layer, Pass pass, Setting setting) {
  if (!cuda_is_available()) return state.SkipWithError("no CUDA device");
  if (setting.backend == cuda::ConvBackend::Cudnn && !cuda::cudnn_built())
    return state.SkipWithError("this build has no cuDNN");
  // A kernel that throws (a CUDA error, a shape cuDNN refuses) fails this benchmark, not the whole run.
  try {
    cuda::set_math_mode(setting.math);
    cuda::set_conv_backend(setting.backend);
    if (const std::string& error = cpu_check(layer, setting); !error.empty())
      return state.SkipWithError(error.c_str());
    const kernels::Conv2dGeometry g = geometry_of(layer, kBatch);
    const Buffers& buffers = timed_buffers(layer);
    const bool bf16 = setting.math == cuda::MathMode::BF16;
    launch(pass, g, buffers, bf16);  // warm-up: module loading, cuDNN's plan and workspace
    cuda::synchronize();
    const double seconds = benchmarks::seconds_per_launch(state, [&] { launch(pass, g, buffers, bf16); });
    state.counters["TFLOP/s"] = 1e-12 * flops_per_pass(g) / seconds;
  } catch (const std::exception& error) {
    state.SkipWithError(error.what());
  }
}

// Names read <pass>/<shape>/<math>/<backend>, e.g. conv2d_backward_weight/N128_C64_K64_64x64_3x3_s1/tf32/own.
// Registered layer by layer, the order timed_buffers relies on.
void register_benchmarks() {
  for (const Layer& layer : kLayers)
    for (Pass pass : {Pass::Forward, Pass::BackwardInput, Pass::BackwardWeight})
      for (cuda::MathMode math : {cuda::MathMode::FP32, cuda::MathMode::TF32, cuda::MathMode::BF16})
        for (cuda::ConvBackend backend :
             {cuda::ConvBackend::Own, cuda::ConvBackend::Direct, cuda::ConvBackend::Cudnn}) {
          // cuDNN has no bf16 products on float tensors (our BF16 keeps float weights); PyTorch's bf16
          // convolutions are the reference.
          if (math == cuda::MathMode::BF16 && backend == cuda::ConvBackend::Cudnn) continue;
          // Our plain products, beside `own` in FP32 and TF32, where it departs from them on most of these
          // layers (kernels/cuda/conv2d.cu): Winograd in FP32, layout copies in TF32 (BF16 takes the same
          // copies as TF32).
          if (backend == cuda::ConvBackend::Direct && math == cuda::MathMode::BF16) continue;
          const std::string name = std::string(name_of(pass)) + "/" + label(layer, kBatch) + "/" +
                                   cuda::name_of(math) + "/" + cuda::name_of(backend);
          benchmark::RegisterBenchmark(name.c_str(), time_pass, layer, pass, Setting{backend, math})
              ->Unit(benchmark::kMillisecond)
              ->UseManualTime()
              ->MinTime(0.2);
        }
}

}  // namespace
}  // namespace dscope

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  dscope::register_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  dscope::release_buffers();
  benchmark::Shutdown();
  return 0;
}
