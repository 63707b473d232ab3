// The tensor core: creation, geometry, element access, copies, printing, seeded randomness, the allocator.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "tensor/allocator.h"
#include "tensor/ops/all.h"

namespace dscope {
namespace {

TEST(Tensor, CreationFillsAndDescribesItself) {
  const Tensor z = Tensor::zeros({2, 3});
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.numel(), 6);
  EXPECT_EQ(z.strides(), (Strides{3, 1}));
  EXPECT_EQ(z.dtype(), DType::Float32);
  EXPECT_TRUE(z.device().is_cpu());
  EXPECT_EQ(z.to_vector<float>(), std::vector<float>(6, 0.0f));
  EXPECT_EQ(Tensor::full({2}, 2.5f).to_vector<float>(), (std::vector<float>{2.5f, 2.5f}));
  EXPECT_EQ(Tensor::ones({2}, DType::Int64).to_vector<std::int64_t>(), (std::vector<std::int64_t>{1, 1}));
  EXPECT_EQ(Tensor::scalar(4.0f).rank(), 0);
  EXPECT_FLOAT_EQ(Tensor::scalar(4.0f).item<float>(), 4.0f);
}

TEST(Tensor, FromVectorChecksTheCount) {
  EXPECT_THROW(Tensor::from_vector({1, 2, 3}, {2, 2}), ShapeError);
  EXPECT_THROW(Tensor::from_int64({1, 2, 3}, {2}), ShapeError);
  EXPECT_THROW(Tensor::zeros({2, -1}), ShapeError);
}

TEST(Tensor, TypedAccessChecksTheDtype) {
  const Tensor labels = Tensor::from_int64({0, 2}, {2});
  EXPECT_THROW(labels.data<float>(), DTypeError);
  EXPECT_THROW(labels.to_vector<float>(), DTypeError);
  EXPECT_EQ(labels.to_vector<std::int64_t>(), (std::vector<std::int64_t>{0, 2}));
}

TEST(Tensor, UndefinedTensorThrowsOnUse) {
  const Tensor undefined;
  EXPECT_FALSE(undefined.defined());
  EXPECT_THROW(undefined.shape(), Error);
}

TEST(Tensor, ItemNeedsOneElement) {
  EXPECT_THROW(Tensor::zeros({2}).item<float>(), ShapeError);
}

TEST(Tensor, DetachSharesStorageButNotHistory) {
  Tensor x = Tensor::from_vector({1, 2}, {2});
  x.set_requires_grad(true);
  const Tensor y = (x * 2.0f).detach();
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.grad_fn(), nullptr);
  const Tensor x_view = x.detach();
  x_view.data<float>()[0] = 7.0f;
  EXPECT_FLOAT_EQ(x.to_vector<float>()[0], 7.0f);
}

TEST(Tensor, AsStridedRefusesToRunPastStorage) {
  const Tensor x = Tensor::zeros({4});
  EXPECT_THROW(x.as_strided({3}, {2}, 0), ShapeError);
  EXPECT_NO_THROW(x.as_strided({2}, {2}, 1));
}

TEST(Tensor, SameSeedSameValues) {
  Generator first(42), second(42), other(43);
  const std::vector<float> a = Tensor::randn({100}, first).to_vector<float>();
  EXPECT_EQ(a, Tensor::randn({100}, second).to_vector<float>());
  EXPECT_NE(a, Tensor::randn({100}, other).to_vector<float>());
}

TEST(Tensor, RandomFillsHaveTheRequestedMoments) {
  Generator generator(1);
  const std::vector<float> normal = Tensor::randn({20000}, generator, 1.0f, 2.0f).to_vector<float>();
  double mean = 0, square = 0;
  for (float v : normal)
    mean += v;
  mean /= static_cast<double>(normal.size());
  for (float v : normal)
    square += (v - mean) * (v - mean);
  EXPECT_NEAR(mean, 1.0, 0.05);
  EXPECT_NEAR(std::sqrt(square / static_cast<double>(normal.size())), 2.0, 0.05);
  const std::vector<float> uniform = Tensor::uniform({20000}, generator, -1.0f, 3.0f).to_vector<float>();
  EXPECT_GE(*std::min_element(uniform.begin(), uniform.end()), -1.0f);
  EXPECT_LT(*std::max_element(uniform.begin(), uniform.end()), 3.0f);
}

TEST(Tensor, GeneratorBelowStaysInRange) {
  Generator generator(5);
  std::vector<int> counts(3, 0);
  for (int i = 0; i < 3000; ++i)
    ++counts[static_cast<std::size_t>(generator.below(3))];
  for (int count : counts)
    EXPECT_NEAR(count, 1000, 150);
}

TEST(Tensor, PrintsValuesShapeAndGradFn) {
  Tensor x = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  std::ostringstream plain;
  plain << x;
  EXPECT_EQ(plain.str(), "tensor([[1.0000, 2.0000], [3.0000, 4.0000]], shape=[2,2], dtype=float32)");
  x.set_requires_grad(true);
  std::ostringstream with_graph;
  with_graph << relu(x);
  EXPECT_NE(with_graph.str().find("grad_fn=relu"), std::string::npos) << with_graph.str();
  std::ostringstream large;
  large << Tensor::zeros({2000});
  EXPECT_NE(large.str().find("..."), std::string::npos);
  EXPECT_LT(large.str().size(), 200u);
}

TEST(Tensor, DeviceParsing) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("cuda:1"), Device::cuda(1));
  EXPECT_EQ(Device::parse("cuda").to_string(), "cuda:0");
  EXPECT_THROW(Device::parse("gpu"), ValueError);
  EXPECT_THROW(Device::parse("cuda:x"), ValueError);
}

TEST(Device, AnUnknownCudaMathIsRefusedByName) {
  try {
    set_cuda_math("fp16");
    FAIL() << "expected an error";
  } catch (const ValueError& error) {
    EXPECT_NE(std::string(error.what()).find("'fp16' is not one of fp32, tf32, bf16"), std::string::npos)
        << error.what();
  }
}

TEST(Tensor, CudaRequestWithoutDeviceIsAClearError) {
  if (cuda_is_available()) GTEST_SKIP() << "a CUDA device is present; this test covers machines without one";
  try {
    Tensor::zeros({2}).to(Device::cuda());
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("cuda"), std::string::npos) << error.what();
  }
}

TEST(Allocator, FreedBlocksAreReused) {
  const Device cpu = Device::cpu();
  { Tensor warm = Tensor::empty({1000, 1000}); }
  const AllocatorStats before = allocator_stats(cpu);
  { Tensor again = Tensor::empty({1000, 1000}); }
  const AllocatorStats after = allocator_stats(cpu);
  EXPECT_EQ(after.cache_hits, before.cache_hits + 1);
  EXPECT_EQ(after.cache_misses, before.cache_misses);
  EXPECT_EQ(after.in_use_bytes, before.in_use_bytes);
  empty_cache(cpu);
  EXPECT_EQ(allocator_stats(cpu).cached_bytes, 0u);
}

}  // namespace
}  // namespace dscope
