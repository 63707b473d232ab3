// The kernel profiler (tensor/profiler.h): what it records while on, and nothing while off.
#include "tensor/profiler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "tensor/ops/all.h"

namespace dscope {
namespace {

const profiler::KernelTime* find(const std::vector<profiler::KernelTime>& times, const std::string& kernel) {
  const auto found = std::find_if(times.begin(), times.end(),
                                  [&](const profiler::KernelTime& time) { return time.kernel == kernel; });
  return found == times.end() ? nullptr : &*found;
}

// Leaves the profiler as the environment set it, whatever a test did.
class Profiler : public testing::Test {
 protected:
  void SetUp() override {
    was_on_ = profiler::enabled();
    profiler::reset();
  }
  void TearDown() override {
    profiler::enable(was_on_);
    profiler::reset();
  }

 private:
  bool was_on_ = false;
};

TEST_F(Profiler, CountsEachDispatchedKernelWhileOn) {
  const Tensor x = Tensor::from_vector({-1, 2, -3, 4}, {4});
  profiler::enable();
  relu(x);
  relu(x);
  add_relu(x, x);
  const std::vector<profiler::KernelTime> times = profiler::snapshot();
  const profiler::KernelTime* relu_time = find(times, "relu_forward");
  ASSERT_NE(relu_time, nullptr);
  EXPECT_EQ(relu_time->calls, 2);
  EXPECT_GE(relu_time->seconds, 0.0);
  const profiler::KernelTime* add_relu_time = find(times, "add_relu_forward");
  ASSERT_NE(add_relu_time, nullptr);
  EXPECT_EQ(add_relu_time->calls, 1);
  for (std::size_t i = 1; i < times.size(); ++i)
    EXPECT_GE(times[i - 1].seconds, times[i].seconds) << "the longest total comes first";
  const std::string table = profiler::report();
  EXPECT_NE(table.find("relu_forward"), std::string::npos) << table;
  EXPECT_NE(table.find("add_relu_forward"), std::string::npos) << table;
}

// A convolution is listed by its layer, so that one kernel's calls on different layers stay apart.
TEST_F(Profiler, NamesEachConvolutionByItsLayer) {
  Generator generator(7);
  const Tensor x = Tensor::randn({1, 2, 6, 6}, generator), w = Tensor::randn({3, 2, 3, 3}, generator);
  profiler::enable();
  Conv2dOptions strided;
  strided.stride_h = strided.stride_w = 2;
  conv2d(x, w, Tensor(), Conv2dOptions{});
  conv2d(x, w, Tensor(), strided);
  conv2d(x, w, Tensor(), strided);
  const std::vector<profiler::KernelTime> times = profiler::snapshot();
  const profiler::KernelTime* plain = find(times, "conv2d_forward N1 2→3 6×6 3×3");
  const profiler::KernelTime* with_stride = find(times, "conv2d_forward N1 2→3 6×6 3×3 s2");
  ASSERT_NE(plain, nullptr) << profiler::report();
  ASSERT_NE(with_stride, nullptr) << profiler::report();
  EXPECT_EQ(plain->calls, 1);
  EXPECT_EQ(with_stride->calls, 2);
}

TEST_F(Profiler, RecordsNothingWhileOffAndForgetsOnReset) {
  const Tensor x = Tensor::from_vector({-1, 2}, {2});
  profiler::enable(false);
  relu(x);
  EXPECT_EQ(find(profiler::snapshot(), "relu_forward"), nullptr);
  profiler::enable();
  relu(x);
  EXPECT_NE(find(profiler::snapshot(), "relu_forward"), nullptr);
  profiler::reset();
  EXPECT_TRUE(profiler::snapshot().empty());
}

}  // namespace
}  // namespace dscope
