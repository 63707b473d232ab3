// Finite-difference gradient checking, used by the test of every op with a backward.
//
// The function under test maps some float tensors to one output; the checked scalar is
// loss = Σ output · W for fixed random weights W, so every output element counts and mistakes cannot
// cancel the way they can under a plain sum. For each input coordinate the numeric gradient is the
// central difference (loss(x + h) − loss(x − h)) / 2h, with the loss accumulated in double; it must match
// the analytic gradient from backward() within atol + rtol · max(|analytic|, |numeric|).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "tensor/tensor.h"

namespace dscope::testing {

struct GradcheckOptions {
  float step = 1e-3f;
  double atol = 2e-3;
  double rtol = 1e-2;
  std::uint64_t seed = 1234;
  // Check at most this many coordinates per input (chosen at random), or all when 0.
  std::int64_t max_coordinates_per_input = 0;
};

using TensorFunction = std::function<Tensor(const std::vector<Tensor>&)>;

// `inputs` are CPU tensors; float ones get requires_grad and are checked, int64 ones pass through.
// The function must be deterministic (reseed any generator inside it) and must not keep state across calls.
::testing::AssertionResult gradcheck(const TensorFunction& function, std::vector<Tensor> inputs,
                                     const GradcheckOptions& options = {});

}  // namespace dscope::testing
