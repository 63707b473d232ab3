// GEMM on the GPU: C = A·B at 4096³ (row-major, no transpose), kernels::cuda::gemm with our own kernel and
// with cuBLAS (GemmBackend, kernels/cuda/settings.h), in FP32, TF32 and BF16 (MathMode; cuBLAS in BF16 is
// cublasGemmEx on float matrices with CUBLAS_COMPUTE_32F_FAST_16BF, the same precision). 4096³ is large
// enough to show each implementation's sustained rate; the conv shapes in bench_cuda_conv2d.cpp show the
// awkward ones. benchmarks/torch_cuda_reference.py times torch.matmul at the same size, and
// benchmarks/gpu_compare.py joins both by name: gemm/M4096_N4096_K4096/<fp32|tf32|bf16>/<own|cublas>.
//
// TFLOP/s counts 2·M·N·K operations. Before timing, each setting is checked once against kernels::cpu::gemm
// at 512³: the largest difference over the largest CPU magnitude must stay below 1e-3 in FP32, 1e-2 in
// TF32 and 4e-2 in BF16. Time is wall-clock around batches of launches, each followed by one
// kernels::cuda::synchronize(), as manual time (benchmarks/cuda_launch_timing.h).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include "benchmarks/cuda_launch_timing.h"
#include "kernels/cuda/settings.h"
#include "kernels/gemm.h"
#include "tensor/device.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace dscope {
namespace {

namespace cuda = kernels::cuda;

constexpr std::int64_t kSize = 4096, kCheckSize = 512;

const char* name_of(cuda::GemmBackend backend) {
  return backend == cuda::GemmBackend::Own ? "own" : "cublas";
}

kernels::GemmGeometry square(std::int64_t size) {
  kernels::GemmGeometry g;
  g.M = g.N = g.K = size;
  g.lda = g.ldb = g.ldc = size;
  return g;
}

// A, B and C of a square product on the GPU, A and B random. `poison` fills C with NaN (for the check: with
// beta = 0 every element must be overwritten, NaN included); otherwise it is left uninitialised.
struct Buffers {
  Buffers(std::int64_t size, bool poison) {
    Generator generator(1);
    a = Tensor::randn({size, size}, generator).to(Device::cuda());
    b = Tensor::randn({size, size}, generator).to(Device::cuda());
    c = poison ? Tensor::full({size, size}, std::nanf("")).to(Device::cuda())
               : Tensor::empty({size, size}, DType::Float32, Device::cuda());
  }
  Tensor a, b, c;
};

void launch(const kernels::GemmGeometry& g, const Buffers& buffers) {
  cuda::gemm(g, 1.0f, buffers.a.data<float>(), buffers.b.data<float>(), 0.0f, buffers.c.data<float>());
}

// Empty when the GPU agrees with kernels::cpu::gemm at kCheckSize³ in the current setting, else the error.
std::string cpu_check(cuda::MathMode math) {
  const kernels::GemmGeometry g = square(kCheckSize);
  const Buffers buffers(kCheckSize, true);
  launch(g, buffers);
  const std::vector<float> actual = buffers.c.to_vector<float>();
  const std::vector<float> a = buffers.a.to_vector<float>(), b = buffers.b.to_vector<float>();
  std::vector<float> expected(actual.size());
  kernels::cpu::gemm(g, 1.0f, a.data(), b.data(), 0.0f, expected.data());
  double largest = 0.0, error = 0.0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    largest = std::max(largest, std::abs(static_cast<double>(expected[i])));
    const double difference = std::abs(static_cast<double>(actual[i]) - expected[i]);
    if (!(difference <= error)) error = difference;  // so that a NaN fails
  }
  const double relative = error / std::max(largest, 1e-30);
  const double tolerance = math == cuda::MathMode::FP32 ? 1e-3 : math == cuda::MathMode::TF32 ? 1e-2 : 4e-2;
  if (relative <= tolerance) return "";
  std::ostringstream out;
  out << "gemm " << name_of(cuda::gemm_backend()) << " " << cuda::name_of(math)
      << " differs from kernels::cpu at " << kCheckSize << "^3: max error " << error << " over max |cpu| "
      << largest << " = " << relative << " > " << tolerance;
  return out.str();
}

void time_gemm(benchmark::State& state, cuda::GemmBackend backend, cuda::MathMode math) {
  if (!cuda_is_available()) return state.SkipWithError("no CUDA device");
  // A kernel that throws (a CUDA or cuBLAS error) fails this benchmark, not the whole run.
  try {
    cuda::set_math_mode(math);
    cuda::set_gemm_backend(backend);
    if (const std::string error = cpu_check(math); !error.empty()) return state.SkipWithError(error.c_str());
    const kernels::GemmGeometry g = square(kSize);
    const Buffers buffers(kSize, false);
    launch(g, buffers);  // warm-up: module loading, cuBLAS's handle and heuristics
    cuda::synchronize();
    const double seconds = benchmarks::seconds_per_launch(state, [&] { launch(g, buffers); });
    const double flops = 2.0 * static_cast<double>(g.M) * static_cast<double>(g.N) * static_cast<double>(g.K);
    state.counters["TFLOP/s"] = 1e-12 * flops / seconds;
  } catch (const std::exception& error) {
    state.SkipWithError(error.what());
  }
}

// Names read gemm/M4096_N4096_K4096/<math>/<backend>.
// A stream rather than operator+ on strings: GCC 12 at -O3 reports a false -Wrestrict for the latter.
void register_benchmarks() {
  for (cuda::MathMode math : {cuda::MathMode::FP32, cuda::MathMode::TF32, cuda::MathMode::BF16})
    for (cuda::GemmBackend backend : {cuda::GemmBackend::Own, cuda::GemmBackend::Cublas}) {
      std::ostringstream name;
      name << "gemm/M" << kSize << "_N" << kSize << "_K" << kSize << "/" << cuda::name_of(math) << "/"
           << name_of(backend);
      benchmark::RegisterBenchmark(name.str().c_str(), time_gemm, backend, math)
          ->Unit(benchmark::kMillisecond)
          ->UseManualTime()
          ->MinTime(0.3);
    }
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
