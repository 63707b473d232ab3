// The CPU GEMMs (our packed one, Eigen's, and the entry point that chooses) against the double-precision
// reference: every transpose combination, leading dimensions wider than the rows they hold, beta 0 over a C
// full of NaN (which must be ignored), beta 1 (accumulate), alpha other than 1, the columns past N of a wide
// C, which must stay untouched, and shapes that cross the packed GEMM's tile and cache-block edges.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu/gemm_packed.h"
#include "kernels/gemm.h"
#include "tensor/random.h"
#include "tests/support/compare.h"

namespace dscope {
namespace {

struct Case {
  std::int64_t M, N, K;
  bool transpose_a, transpose_b;
  std::int64_t extra_lda, extra_ldb, extra_ldc;  // leading dimension beyond the stored row length
  float alpha, beta;
};

const Case kCases[] = {
    {1, 1, 1, false, false, 0, 0, 0, 1.0f, 0.0f},
    {7, 5, 3, false, false, 0, 0, 0, 1.0f, 0.0f},
    {37, 19, 23, true, false, 0, 0, 0, 1.0f, 0.0f},
    {37, 19, 23, false, true, 0, 0, 0, 1.0f, 1.0f},
    {37, 19, 23, true, true, 0, 0, 0, 0.5f, 1.0f},
    {64, 300, 27, false, false, 5, 3, 7, 1.0f, 0.0f},
    {33, 65, 129, true, false, 2, 9, 1, -2.0f, 1.0f},
    {65, 33, 129, false, true, 4, 1, 6, 1.5f, 0.0f},
    {128, 130, 70, true, true, 3, 3, 3, 1.0f, 1.0f},
    {200, 1, 50, false, false, 0, 0, 0, 1.0f, 0.0f},
    {1, 200, 50, false, true, 0, 0, 0, 1.0f, 1.0f},
    {16, 16, 0, false, false, 0, 0, 0, 1.0f, 0.0f},
    {9, 11, 13, false, false, 0, 0, 2, 1.0f, 0.5f},
    // Tiles are 6 × 16 (AVX2) or 8 × 32 (AVX-512) and depth blocks 256 in the packed GEMM: ragged edges and
    // several depth blocks.
    {13, 47, 600, false, false, 1, 2, 3, 1.0f, 1.0f},
    {150, 17, 257, true, true, 0, 0, 0, 1.0f, 0.0f},
    {6, 16, 256, false, true, 0, 0, 0, 2.0f, 0.0f},
    {5, 4100, 9, false, false, 0, 0, 1, 1.0f, 0.0f},
};

using GemmFunction = void (*)(const kernels::GemmGeometry&, float, const float*, const float*, float, float*);

struct Backend {
  const char* name;
  GemmFunction function;
};

const Backend kBackends[] = {
    {"gemm", kernels::cpu::gemm},
    {"gemm_packed", kernels::cpu::gemm_packed},
    {"gemm_eigen", kernels::cpu::gemm_eigen},
};

std::string describe(const Backend& backend, const Case& c) {
  std::ostringstream out;
  out << backend.name << " M=" << c.M << " N=" << c.N << " K=" << c.K << (c.transpose_a ? " Aᵀ" : " A")
      << (c.transpose_b ? " Bᵀ" : " B") << " alpha=" << c.alpha << " beta=" << c.beta;
  return out.str();
}

std::vector<float> random_values(std::int64_t count, Generator& generator) {
  std::vector<float> values(static_cast<std::size_t>(count));
  for (float& value : values)
    value = generator.normal();
  return values;
}

class GemmKernels : public ::testing::TestWithParam<Backend> {};

TEST_P(GemmKernels, CpuMatchesReference) {
  const Backend& backend = GetParam();
  Generator generator(31);
  for (const Case& c : kCases) {
    kernels::GemmGeometry g;
    g.M = c.M, g.N = c.N, g.K = c.K;
    g.transpose_a = c.transpose_a, g.transpose_b = c.transpose_b;
    // Stored shapes: A is [M, K] or, transposed, [K, M]; B is [K, N] or [N, K]; C is [M, N].
    const std::int64_t a_rows = c.transpose_a ? c.K : c.M, a_cols = c.transpose_a ? c.M : c.K;
    const std::int64_t b_rows = c.transpose_b ? c.N : c.K, b_cols = c.transpose_b ? c.K : c.N;
    g.lda = a_cols + c.extra_lda, g.ldb = b_cols + c.extra_ldb, g.ldc = c.N + c.extra_ldc;
    const std::vector<float> a = random_values(a_rows * g.lda, generator);
    const std::vector<float> b = random_values(b_rows * g.ldb, generator);
    std::vector<float> out = random_values(c.M * g.ldc, generator);
    if (c.beta == 0.0f) {
      // beta 0 must ignore C, even NaN; the padding columns keep NaN, which the check below must not see
      // change.
      for (float& value : out)
        value = std::nanf("");
    }
    const std::vector<double> ad(a.begin(), a.end()), bd(b.begin(), b.end());
    std::vector<double> expected(out.begin(), out.end());
    backend.function(g, c.alpha, a.data(), b.data(), c.beta, out.data());
    kernels::reference::gemm<double>(g, c.alpha, ad.data(), bd.data(), c.beta, expected.data());

    std::vector<float> written, padding_after;
    std::vector<double> written_expected, padding_before;
    for (std::int64_t i = 0; i < c.M; ++i)
      for (std::int64_t j = 0; j < g.ldc; ++j) {
        const std::size_t at = static_cast<std::size_t>(i * g.ldc + j);
        if (j < c.N) {
          written.push_back(out[at]);
          written_expected.push_back(expected[at]);
        } else {
          padding_after.push_back(out[at]);
          padding_before.push_back(expected[at]);  // the reference leaves padding alone too
        }
      }
    EXPECT_TRUE(testing::all_close(written, written_expected, 1e-4, 1e-4, describe(backend, c)));
    for (std::size_t i = 0; i < padding_after.size(); ++i) {
      const bool same = (std::isnan(padding_after[i]) && std::isnan(padding_before[i])) ||
                        static_cast<double>(padding_after[i]) == padding_before[i];
      EXPECT_TRUE(same) << describe(backend, c) << ": a column past N of C was written";
    }
  }
}

TEST_P(GemmKernels, LargeProductSplitOverThreads) {
  // Large enough to be split over threads: the threaded path must agree too.
  const Backend& backend = GetParam();
  Generator generator(32);
  kernels::GemmGeometry g;
  g.M = 256, g.N = 320, g.K = 288, g.lda = g.K, g.ldb = g.N, g.ldc = g.N;
  const std::vector<float> a = random_values(g.M * g.K, generator), b = random_values(g.K * g.N, generator);
  std::vector<float> out(static_cast<std::size_t>(g.M * g.N), std::nanf(""));
  const std::vector<double> ad(a.begin(), a.end()), bd(b.begin(), b.end());
  std::vector<double> expected(out.size());
  backend.function(g, 1.0f, a.data(), b.data(), 0.0f, out.data());
  kernels::reference::gemm<double>(g, 1.0, ad.data(), bd.data(), 0.0, expected.data());
  EXPECT_TRUE(testing::all_close(out, expected, 1e-3, 1e-4, std::string(backend.name) + " 256x320x288"));
}

TEST(GemmKernels, PackedResultDoesNotDependOnThreadCount) {
  // The packed GEMM splits C, never the depth, over threads: every element is summed in the same order.
  Generator generator(33);
  kernels::GemmGeometry g;
  g.M = 40, g.N = 700, g.K = 300, g.lda = g.K, g.ldb = g.N, g.ldc = g.N;
  const std::vector<float> a = random_values(g.M * g.K, generator), b = random_values(g.K * g.N, generator);
  std::vector<float> one_thread(static_cast<std::size_t>(g.M * g.N)), two_threads(one_thread.size());
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  kernels::cpu::gemm_packed(g, 1.0f, a.data(), b.data(), 0.0f, one_thread.data());
  omp_set_num_threads(2);
  kernels::cpu::gemm_packed(g, 1.0f, a.data(), b.data(), 0.0f, two_threads.data());
  omp_set_num_threads(threads);
  EXPECT_EQ(one_thread, two_threads);
}

TEST(GemmKernels, PackedOperandsMatchReference) {
  // Operands written straight into the packed layout (as the Winograd transforms write them), through
  // a_index and b_index: partial last panels (whose padding holds NaN, which must not reach C), several
  // depth blocks, beta 0 over NaN and beta 1.
  namespace packed = kernels::cpu::packed;
  struct PackedCase {
    std::int64_t M, N, K;
    float beta;
  };
  const PackedCase cases[] = {{1, 1, 1, 0.0f}, {13, 47, 600, 1.0f}, {16, 64, 9, 0.0f}, {257, 33, 300, 0.0f}};
  Generator generator(34);
  for (const PackedCase& c : cases) {
    const std::vector<float> a = random_values(c.M * c.K, generator), b = random_values(c.K * c.N, generator);
    std::vector<float> a_packed(static_cast<std::size_t>(packed::a_size(c.M, c.K)), std::nanf(""));
    std::vector<float> b_packed(static_cast<std::size_t>(packed::b_size(c.K, c.N)), std::nanf(""));
    for (std::int64_t i = 0; i < c.M; ++i)
      for (std::int64_t k = 0; k < c.K; ++k)
        a_packed[static_cast<std::size_t>(packed::a_index(i, k, c.K))] =
            a[static_cast<std::size_t>(i * c.K + k)];
    for (std::int64_t k = 0; k < c.K; ++k)
      for (std::int64_t j = 0; j < c.N; ++j)
        b_packed[static_cast<std::size_t>(packed::b_index(k, j, c.K))] =
            b[static_cast<std::size_t>(k * c.N + j)];
    std::vector<float> out = random_values(c.M * c.N, generator);
    if (c.beta == 0.0f) out.assign(out.size(), std::nanf(""));
    const std::vector<double> ad(a.begin(), a.end()), bd(b.begin(), b.end());
    std::vector<double> expected(out.begin(), out.end());
    kernels::GemmGeometry g;
    g.M = c.M, g.N = c.N, g.K = c.K, g.lda = c.K, g.ldb = c.N, g.ldc = c.N;
    kernels::reference::gemm<double>(g, 1.0, ad.data(), bd.data(), c.beta, expected.data());
    packed::gemm(c.M, c.N, c.K, a_packed.data(), b_packed.data(), c.beta, out.data(), c.N);
    std::ostringstream name;
    name << "packed::gemm M=" << c.M << " N=" << c.N << " K=" << c.K << " beta=" << c.beta;
    EXPECT_TRUE(testing::all_close(out, expected, 1e-4, 1e-4, name.str()));
  }
}

INSTANTIATE_TEST_SUITE_P(Cpu, GemmKernels, ::testing::ValuesIn(kBackends),
                         [](const ::testing::TestParamInfo<Backend>& param) {
                           return std::string(param.param.name);
                         });

}  // namespace
}  // namespace dscope
