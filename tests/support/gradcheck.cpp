#include "tests/support/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "tensor/ops/all.h"

namespace dscope::testing {
namespace {

double weighted_sum(const Tensor& output, const std::vector<float>& weights) {
  const std::vector<float> values = output.to_vector<float>();
  double total = 0.0;
  for (std::size_t i = 0; i < values.size(); ++i)
    total += static_cast<double>(values[i]) * weights[i];
  return total;
}

}  // namespace

::testing::AssertionResult gradcheck(const TensorFunction& function, std::vector<Tensor> inputs,
                                     const GradcheckOptions& options) {
  for (Tensor& input : inputs) {
    if (input.dtype() != DType::Float32) continue;
    input = dense_copy(input);  // private, so perturbing it cannot touch the caller's data
    input.set_requires_grad(true);
  }
  const Tensor output = function(inputs);
  Generator generator(options.seed);
  const Tensor weights = Tensor::randn(output.shape(), generator);
  const std::vector<float> weight_values = weights.to_vector<float>();
  sum(output * weights).backward();

  std::ostringstream failures;
  int failure_count = 0;
  double worst_abs = 0.0;
  for (std::size_t index = 0; index < inputs.size(); ++index) {
    Tensor& input = inputs[index];
    if (input.dtype() != DType::Float32) continue;
    if (!input.grad().defined()) {
      failures << "input " << index << " " << input.shape() << ": backward produced no gradient\n";
      ++failure_count;
      continue;
    }
    const std::vector<float> analytic = input.grad().to_vector<float>();
    std::vector<std::int64_t> coordinates(static_cast<std::size_t>(input.numel()));
    std::iota(coordinates.begin(), coordinates.end(), 0);
    if (options.max_coordinates_per_input > 0 && input.numel() > options.max_coordinates_per_input) {
      for (std::int64_t i = 0; i < options.max_coordinates_per_input; ++i)  // partial Fisher-Yates shuffle
        std::swap(
            coordinates[static_cast<std::size_t>(i)],
            coordinates[static_cast<std::size_t>(i + static_cast<std::int64_t>(generator.below(
                                                         static_cast<std::uint64_t>(input.numel() - i))))]);
      coordinates.resize(static_cast<std::size_t>(options.max_coordinates_per_input));
    }
    float* data = input.data<float>();
    NoGradGuard no_grad;
    for (std::int64_t coordinate : coordinates) {
      const float original = data[coordinate];
      data[coordinate] = original + options.step;
      const double plus = weighted_sum(function(inputs), weight_values);
      data[coordinate] = original - options.step;
      const double minus = weighted_sum(function(inputs), weight_values);
      data[coordinate] = original;
      const double numeric = (plus - minus) / (2.0 * static_cast<double>(options.step));
      const double exact = analytic[static_cast<std::size_t>(coordinate)];
      const double error = std::abs(exact - numeric);
      worst_abs = std::max(worst_abs, error);
      if (!(error <= options.atol + options.rtol * std::max(std::abs(exact), std::abs(numeric)))) {
        if (++failure_count <= 8)
          failures << "input " << index << " " << input.shape() << " element " << coordinate << ": analytic "
                   << exact << " vs numeric " << numeric << "\n";
      }
    }
  }
  if (failure_count == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << failure_count << " gradient mismatches (max abs error " << worst_abs << "), first ones:\n"
         << failures.str();
}

}  // namespace dscope::testing
