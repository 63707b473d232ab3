// Our packed GEMM against Eigen's (both threaded by OpenMP), on the shapes that decide conv2d's speed.
//
// GFLOP/s counts 2·M·N·K operations per product (a multiply and an add per term). 1024³ is the figure to
// quote for the machine. The two conv-like products are one forward GEMM of a 64-channel 3×3 layer over eight
// 64×64 images, stored as cpu/conv2d.cpp stores it (output positions as N) and turned round (output positions
// as M): the orientation changes Eigen's speed about twofold at this size. Each product is checked once
// against the double-precision reference on a sample of output rows before it is timed; the reference
// itself is timed at 256³ for scale. Time is wall-clock: the product uses every core.
#include <benchmark/benchmark.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/gemm.h"
#include "tensor/random.h"

namespace dscope {
namespace {

struct Product {
  const char* name;
  std::int64_t M, N, K;
};

const Product kProducts[] = {
    {"1024x1024x1024", 1024, 1024, 1024},
    {"conv_output_positions_as_N_64x32768x576", 64, 32768, 576},
    {"conv_output_positions_as_M_32768x64x576", 32768, 64, 576},
};

std::vector<float> random_values(std::int64_t count, Generator& generator) {
  std::vector<float> values(static_cast<std::size_t>(count));
  for (float& value : values)
    value = generator.normal();
  return values;
}

kernels::GemmGeometry geometry_of(const Product& product) {
  kernels::GemmGeometry g;
  g.M = product.M, g.N = product.N, g.K = product.K;
  g.lda = g.K, g.ldb = g.N, g.ldc = g.N;
  return g;
}

// Compares a few rows of c = a·b with the double-precision reference; empty when they agree.
std::string check_rows(const kernels::GemmGeometry& g, const std::vector<float>& a,
                       const std::vector<float>& b, const std::vector<float>& c) {
  const std::vector<double> bd(b.begin(), b.end());
  kernels::GemmGeometry row = g;
  row.M = 1;
  for (std::int64_t i = 0; i < g.M; i += std::max<std::int64_t>(1, g.M / 4)) {
    const std::vector<double> ad(a.begin() + i * g.lda, a.begin() + (i + 1) * g.lda);
    std::vector<double> expected(static_cast<std::size_t>(g.N));
    kernels::reference::gemm<double>(row, 1.0, ad.data(), bd.data(), 0.0, expected.data());
    for (std::int64_t j = 0; j < g.N; ++j) {
      const double got = c[static_cast<std::size_t>(i * g.ldc + j)],
                   want = expected[static_cast<std::size_t>(j)];
      if (!(std::abs(got - want) <= 1e-3 + 1e-4 * std::abs(want))) {
        std::ostringstream out;
        out << "gemm differs from the reference at (" << i << ", " << j << "): " << got << " vs " << want;
        return out.str();
      }
    }
  }
  return "";
}

void report(benchmark::State& state, const kernels::GemmGeometry& g) {
  const double flops = 2.0 * static_cast<double>(g.M) * static_cast<double>(g.N) * static_cast<double>(g.K);
  state.counters["GFLOP/s"] =
      benchmark::Counter(1e-9 * flops * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

using GemmFunction = void (*)(const kernels::GemmGeometry&, float, const float*, const float*, float, float*);

void cpu_gemm(benchmark::State& state, const Product& product, GemmFunction gemm) {
  const kernels::GemmGeometry g = geometry_of(product);
  Generator generator(5);
  const std::vector<float> a = random_values(g.M * g.K, generator), b = random_values(g.K * g.N, generator);
  std::vector<float> c(static_cast<std::size_t>(g.M * g.N));
  gemm(g, 1.0f, a.data(), b.data(), 0.0f, c.data());
  if (const std::string error = check_rows(g, a, b, c); !error.empty())
    return state.SkipWithError(error.c_str());
  for (auto _ : state) {
    gemm(g, 1.0f, a.data(), b.data(), 0.0f, c.data());
    benchmark::DoNotOptimize(c.data());
  }
  report(state, g);
}

void reference_gemm(benchmark::State& state) {
  const kernels::GemmGeometry g = geometry_of({"256x256x256", 256, 256, 256});
  Generator generator(6);
  const std::vector<float> a = random_values(g.M * g.K, generator), b = random_values(g.K * g.N, generator);
  std::vector<float> c(static_cast<std::size_t>(g.M * g.N));
  for (auto _ : state) {
    kernels::reference::gemm<float>(g, 1.0f, a.data(), b.data(), 0.0f, c.data());
    benchmark::DoNotOptimize(c.data());
  }
  report(state, g);
}

void register_benchmarks() {
  for (const Product& product : kProducts) {
    const std::string packed_name = std::string("gemm_packed/") + product.name;
    benchmark::RegisterBenchmark(packed_name.c_str(), cpu_gemm, product, kernels::cpu::gemm_packed)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    const std::string eigen_name = std::string("gemm_eigen/") + product.name;
    benchmark::RegisterBenchmark(eigen_name.c_str(), cpu_gemm, product, kernels::cpu::gemm_eigen)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  benchmark::RegisterBenchmark("gemm_reference/256x256x256", reference_gemm)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
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
