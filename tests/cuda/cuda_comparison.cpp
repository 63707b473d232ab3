// CPU-versus-GPU comparison for the GPU suites (see cuda_comparison.h).
#include "tests/cuda/cuda_comparison.h"

#include <algorithm>
#include <cmath>

#include "tensor/ops/all.h"
#include "tests/support/compare.h"

namespace dscope::testing {
namespace {

std::vector<double> host_values(const Tensor& tensor) {
  std::vector<double> values;
  if (tensor.dtype() == DType::Int64) {
    for (std::int64_t value : tensor.to_vector<std::int64_t>())
      values.push_back(static_cast<double>(value));
  } else {
    for (float value : tensor.to_vector<float>())
      values.push_back(static_cast<double>(value));
  }
  return values;
}

// A leaf of its own (dense copy, no history) on `device`, requiring a gradient when it is float32.
Tensor leaf_on(const Tensor& input, Device device) {
  Tensor leaf = dense_copy(input).to(device);
  if (leaf.dtype() == DType::Float32) leaf.set_requires_grad(true);
  return leaf;
}

}  // namespace

::testing::AssertionResult matches_cpu(const Tensor& gpu, const Tensor& cpu, const Tolerance& tolerance,
                                       const std::string& context) {
  if (!gpu.defined() || !cpu.defined())
    return ::testing::AssertionFailure()
           << context << ": an undefined tensor (gpu " << gpu.defined() << ", cpu " << cpu.defined() << ")";
  if (!gpu.device().is_cuda())
    return ::testing::AssertionFailure() << context << ": the GPU result is on " << gpu.device();
  if (gpu.shape() != cpu.shape() || gpu.dtype() != cpu.dtype())
    return ::testing::AssertionFailure()
           << context << ": GPU result " << dtype_name(gpu.dtype()) << " " << gpu.shape() << ", CPU result "
           << dtype_name(cpu.dtype()) << " " << cpu.shape();
  const std::vector<double> expected = host_values(cpu);
  double largest = 0.0;
  for (double value : expected)
    largest = std::max(largest, std::abs(value));
  return all_close(host_values(gpu), expected, tolerance.absolute + tolerance.of_max * largest,
                   tolerance.relative, context + " " + detail::concat(cpu.shape()));
}

void expect_matches_cpu(const TensorFunction& function, const std::vector<Tensor>& inputs,
                        const std::string& context, const Tolerance& output, const Tolerance& gradient,
                        std::uint64_t seed) {
  SCOPED_TRACE(context);
  std::vector<Tensor> cpu_inputs, gpu_inputs;
  for (const Tensor& input : inputs) {
    cpu_inputs.push_back(leaf_on(input, Device::cpu()));
    gpu_inputs.push_back(leaf_on(input, Device::cuda()));
  }
  const Tensor cpu_output = function(cpu_inputs);
  const Tensor gpu_output = function(gpu_inputs);
  ASSERT_TRUE(matches_cpu(gpu_output, cpu_output, output, context + ": output"));
  if (!cpu_output.requires_grad()) return;

  Generator generator(seed);
  const Tensor weights = Tensor::randn(cpu_output.shape(), generator);
  sum(cpu_output * weights).backward();
  sum(gpu_output * weights.to(Device::cuda())).backward();
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const std::string which = context + ": gradient of input " + std::to_string(i);
    const Tensor cpu_grad = cpu_inputs[i].dtype() == DType::Float32 ? cpu_inputs[i].grad() : Tensor();
    const Tensor gpu_grad = gpu_inputs[i].dtype() == DType::Float32 ? gpu_inputs[i].grad() : Tensor();
    if (!cpu_grad.defined()) {
      EXPECT_FALSE(gpu_grad.defined()) << which << ": the GPU has one, the CPU has none";
      continue;
    }
    EXPECT_TRUE(matches_cpu(gpu_grad, cpu_grad, gradient, which));
  }
}

}  // namespace dscope::testing
