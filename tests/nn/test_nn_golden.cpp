// Golden test of a whole model: dscope's ResNet-8 (resnet_config(8, 3), width multiplier 0.5) against the
// same network in PyTorch, written by tests/fixtures/gen_nn_golden.py. The PyTorch state dict loads into our
// model by name, which checks that every key, shape and dtype lines up with torchvision's naming; then one
// training step (training-mode forward, cross-entropy, backward, SGD with momentum 0.9, weight decay 5e-4,
// learning rate 0.1) and an evaluation-mode forward must match to 1e-4. PyTorch ran in float64 from the same
// float32 values, so the tolerance measures our float32 error through the whole network.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "nn/resnet.h"
#include "optim/sgd.h"
#include "tensor/ops/all.h"
#include "tests/support/compare.h"
#include "tests/support/fixture.h"

namespace dscope {
namespace {

constexpr double kTolerance = 1e-4;  // absolute and relative
constexpr float kLearningRate = 0.1f, kWeightDecay = 5e-4f;

::testing::AssertionResult matches(const Tensor& actual, const Tensor& expected, const std::string& what) {
  if (!actual.defined()) return ::testing::AssertionFailure() << what << ": undefined";
  if (actual.shape() != expected.shape())
    return ::testing::AssertionFailure()
           << what << ": shape " << actual.shape() << ", expected " << expected.shape();
  if (expected.dtype() == DType::Int64) {
    if (actual.to_vector<std::int64_t>() == expected.to_vector<std::int64_t>())
      return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << what << ": integer values differ";
  }
  return testing::all_close(actual.to_vector<float>(), expected.to_vector<float>(), kTolerance, kTolerance,
                            what + " " + expected.shape().to_string());
}

std::map<std::string, Tensor> entries_under(const testing::Fixture& fixture, const std::string& prefix) {
  std::map<std::string, Tensor> entries;
  for (const std::string& name : fixture.names_under(prefix))
    entries.emplace(name, fixture.get(prefix + name));
  return entries;
}

TEST(NnGolden, ResNet8TrainingStepMatchesPyTorch) {
  const std::optional<testing::Fixture> fixture = testing::load_fixture("nn_resnet.bin");
  ASSERT_TRUE(fixture.has_value());
  nn::ResNet model(nn::resnet_config(8, 3, nn::StemKind::Small, 0.5f));
  model.load_state_dict(entries_under(*fixture, "initial/"));
  const Tensor images = fixture->get("input");
  const Tensor targets = fixture->get("targets");

  model.train();
  const Tensor logits = model(images);
  const Tensor loss = cross_entropy(logits, targets);
  EXPECT_TRUE(matches(logits, fixture->get("logits"), "training logits"));
  EXPECT_TRUE(matches(loss, fixture->get("loss"), "loss"));
  loss.backward();
  std::set<std::string> checked;
  for (const auto& [name, parameter] : model.named_parameters()) {
    EXPECT_TRUE(matches(parameter.grad(), fixture->get("grad/" + name), "grad " + name));
    checked.insert(name);
  }
  EXPECT_EQ(checked, fixture->names_under("grad/"));

  optim::Sgd optimizer(model.parameters(), kLearningRate, kWeightDecay, {.momentum = 0.9f});
  optimizer.step();
  const std::map<std::string, Tensor> after = entries_under(*fixture, "after_step/");
  const std::map<std::string, Tensor> state = model.state_dict();
  ASSERT_EQ(state.size(), after.size());
  for (const auto& [name, expected] : after) {
    ASSERT_EQ(state.count(name), 1u) << name;
    EXPECT_TRUE(matches(state.at(name), expected, "after the step: " + name));
  }

  model.eval();
  NoGradGuard no_grad;
  EXPECT_TRUE(matches(model(images), fixture->get("eval_logits"), "evaluation logits after the step"));
}

}  // namespace
}  // namespace dscope
