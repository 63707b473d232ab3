// What every GPU test shares: the skip on machines without a CUDA device, the tolerances, scoped switches of
// the CUDA backend's settings, and the comparison of one computation run on the CPU and on the GPU.
//
// The CPU path is the oracle: it is tested against the reference kernels and golden values elsewhere, so a
// GPU test only has to show that the GPU gives the CPU's numbers from the same inputs, forward and backward.
// Inputs are built on the CPU from a seeded generator and copied to the GPU, so both devices see the same
// bits. The backward runs from loss = Σ output · W with W fixed and random (as in gradcheck.h), so every
// output element's gradient path counts and errors cannot cancel.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cuda/settings.h"
#include "tensor/tensor.h"

namespace dscope::testing {

// Passes when |gpu − cpu| ≤ absolute + relative·|cpu| + of_max·max|cpu| for every element. The of_max term
// scales with the output's magnitude rather than each element's: a sum or a dot product of mixed signs can be
// near zero while its rounding error is set by the size of its terms, which max|cpu| stands for.
struct Tolerance {
  double absolute = 0.0;
  double relative = 0.0;
  double of_max = 0.0;
};

// Copies, views, max pooling and the dropout mask compute nothing, so they must agree bit for bit.
inline constexpr Tolerance kExact{};
// Elementwise float32 ops: both devices round one IEEE operation per element, but exp/log/sigmoid come from
// different math libraries (CUDA documents expf and logf within 2 ulp, about 2.4e-7 relative), so a few
// ulp are allowed; atol covers results that round to near zero.
inline constexpr Tolerance kElementwise{1e-6, 1e-5, 0.0};
// Reductions, GEMM and convolution in float32: the devices add in different orders (tiles, trees, atomics),
// which changes rounding by about sqrt(terms)·2^-24 of the terms' size; 1e-4·max|cpu| covers thousands of
// terms with room to spare, and would still catch a missed or doubled term.
inline constexpr Tolerance kAccumulated{1e-5, 0.0, 1e-4};
// TF32 products round both operands to a 10-bit mantissa (relative error up to 2^-11 ≈ 4.9e-4 each), so a
// dot product is off by about 1e-3 of its terms' size; 5e-3·max|cpu| leaves a margin of a few times that.
inline constexpr Tolerance kTf32{0.0, 0.0, 5e-3};
// BF16 products round both operands to an 8-bit mantissa (relative error up to 2^-9 ≈ 2e-3 each), four
// times TF32's, so a dot product is off by about 4e-3 of its terms' size; 3e-2·max|cpu| leaves the same
// margin. A wrong fragment layout (operands paired with the wrong k) is off by the whole result.
inline constexpr Tolerance kBf16{0.0, 0.0, 3e-2};
// bfloat16 activations (mixed precision, tensor/autocast.h) with float32 products: both devices compute in
// float32 and round each stored tensor to bfloat16 once. Where their float32 results differ in the last
// bits (kAccumulated), the rounding can land one bfloat16 step apart, up to 2^-7 ≈ 7.8e-3 of the value; a
// gradient has passed through one more such rounding on its way back. A wrong widening or a dropped
// rounding is off by far more, or (bit layout) by the whole value.
inline constexpr Tolerance kBf16Storage{1e-5, 8e-3, 1e-3};
inline constexpr Tolerance kBf16StorageGradient{1e-5, 1.6e-2, 1e-2};

// Element by element against the CPU result, after checking that `gpu` is on a CUDA device and has cpu's
// shape and dtype (float32 or int64). On failure the message names `context` and the first mismatches.
::testing::AssertionResult matches_cpu(const Tensor& gpu, const Tensor& cpu, const Tolerance& tolerance,
                                       const std::string& context);

using TensorFunction = std::function<Tensor(const std::vector<Tensor>&)>;

// Runs `function` on copies of `inputs` (CPU tensors) on the CPU and on the GPU: float32 inputs become leaves
// that require a gradient, int64 ones pass through. Checks the outputs against each other with `output`,
// then backpropagates Σ output · W (W random, seeded by `seed`) on both devices and checks every input's
// gradient with `gradient`; an input without a gradient on the CPU must have none on the GPU either.
// `function` must be deterministic: a generator it uses must be created inside it.
void expect_matches_cpu(const TensorFunction& function, const std::vector<Tensor>& inputs,
                        const std::string& context, const Tolerance& output, const Tolerance& gradient,
                        std::uint64_t seed = 4321);

// The base of every *Cuda suite: skips the test, with a reason, where no CUDA device is present (every
// machine without a GPU, CI included), and synchronises after it so an asynchronous fault is reported by the
// test that caused it.
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_is_available()) GTEST_SKIP() << "no CUDA device: GPU test skipped";
  }
  void TearDown() override {
    if (cuda_is_available()) kernels::cuda::synchronize();
  }
};

// Sets one of the CUDA backend's run-time switches for a scope and restores the previous value on exit, so
// a failing test cannot leave TF32 or cuBLAS on for the tests after it.
template <typename Value, Value (*get)(), void (*set)(Value)>
class ScopedSetting {
 public:
  explicit ScopedSetting(Value value) : saved_(get()) { set(value); }
  ~ScopedSetting() { set(saved_); }
  ScopedSetting(const ScopedSetting&) = delete;
  ScopedSetting& operator=(const ScopedSetting&) = delete;

 private:
  Value saved_;
};

using ScopedMathMode =
    ScopedSetting<kernels::cuda::MathMode, &kernels::cuda::math_mode, &kernels::cuda::set_math_mode>;
using ScopedGemmBackend =
    ScopedSetting<kernels::cuda::GemmBackend, &kernels::cuda::gemm_backend, &kernels::cuda::set_gemm_backend>;
using ScopedConvBackend =
    ScopedSetting<kernels::cuda::ConvBackend, &kernels::cuda::conv_backend, &kernels::cuda::set_conv_backend>;

}  // namespace dscope::testing
