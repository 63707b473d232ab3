// The CPU sum kernel against the reference, over [outer, extent, inner] geometries of every kind.
#include <gtest/gtest.h>

#include "kernels/reduce.h"
#include "tensor/random.h"
#include "tests/support/compare.h"

namespace dscope {
namespace {

TEST(ReduceKernels, CpuMatchesReference) {
  const kernels::ReduceGeometry geometries[] = {
      {1, 1, 1}, {1, 1000, 1}, {7, 33, 1}, {1, 17, 300}, {5, 3, 513}, {2, 64, 4096}, {300, 2, 3},
  };
  Generator generator(15);
  for (const kernels::ReduceGeometry& g : geometries) {
    std::vector<float> x(static_cast<std::size_t>(g.outer * g.extent * g.inner));
    for (float& v : x)
      v = generator.normal();
    const std::vector<double> xd(x.begin(), x.end());
    std::vector<float> y(static_cast<std::size_t>(g.outer * g.inner), std::nanf(""));
    std::vector<double> expected(y.size());
    kernels::cpu::sum(g, x.data(), y.data());
    kernels::reference::sum<double>(g, xd.data(), expected.data());
    EXPECT_TRUE(testing::all_close(y, expected, 1e-4, 1e-5,
                                   "sum outer=" + std::to_string(g.outer) + " extent=" +
                                       std::to_string(g.extent) + " inner=" + std::to_string(g.inner)));
  }
}

}  // namespace
}  // namespace dscope
