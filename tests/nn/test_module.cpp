// Module: dotted names in registration order, parameter and buffer registration and counts, train/eval
// reaching every descendant, zero_grad, the summary, and state_dict/load_state_dict: a round trip copies
// values into the existing tensors, and a state that does not fit is rejected with every missing,
// unexpected and mis-shaped entry listed at once, before anything is copied. to(device) moves parameters,
// buffers and gradients in place (same handles), or, for a device this build or machine lacks, throws
// DeviceError and leaves everything where it was.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nn/module.h"
#include "tensor/ops/all.h"

namespace dscope {
namespace {

using nn::Module;

// A leaf with one parameter and one buffer, both filled with `fill` so tests can tell tensors apart.
class Leaf : public Module {
 public:
  Leaf(std::int64_t size, float fill) {
    weight = register_parameter("weight", Tensor::full({size, 2}, fill));
    counter = register_buffer("counter", Tensor::full({size}, fill + 100.0f));
  }
  Tensor forward(const Tensor& input) override { return input * weight; }
  std::string describe() const override { return "Leaf"; }
  Tensor weight, counter;
};

// Two leaves under a parent that has a parameter of its own: names "scale", "first.*", "second.*".
class Parent : public Module {
 public:
  Parent() {
    scale = register_parameter("scale", Tensor::full({1}, 3.0f));
    first = register_module("first", std::make_shared<Leaf>(3, 1.0f));
    second = register_module("second", std::make_shared<Leaf>(4, 2.0f));
  }
  Tensor forward(const Tensor& input) override { return first->forward(input) * scale; }
  std::string describe() const override { return "Parent"; }
  Tensor scale;
  std::shared_ptr<Leaf> first, second;
};

// Lets a test call the protected registration functions.
class Open : public Module {
 public:
  Tensor forward(const Tensor& input) override { return input; }
  std::string describe() const override { return "Open"; }
  using Module::register_buffer;
  using Module::register_module;
  using Module::register_parameter;
};

std::vector<std::string> names_of(const nn::NamedTensors& named) {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : named)
    names.push_back(name);
  return names;
}

std::string message_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "(no error)";
}

TEST(Module, NamesAreDottedPathsInRegistrationOrder) {
  Parent parent;
  EXPECT_EQ(names_of(parent.named_parameters()),
            (std::vector<std::string>{"scale", "first.weight", "second.weight"}));
  EXPECT_EQ(names_of(parent.named_buffers()), (std::vector<std::string>{"first.counter", "second.counter"}));
  ASSERT_EQ(parent.named_children().size(), 2u);
  EXPECT_EQ(parent.named_children()[0].first, "first");
  EXPECT_EQ(parent.named_children()[1].first, "second");
}

TEST(Module, ParametersAreSharedHandlesThatRequireGrad) {
  Parent parent;
  const std::vector<Tensor> parameters = parent.parameters();
  ASSERT_EQ(parameters.size(), 3u);
  EXPECT_TRUE(parameters[0].same(parent.scale));
  EXPECT_TRUE(parameters[1].same(parent.first->weight));
  EXPECT_TRUE(parameters[2].same(parent.second->weight));
  for (const Tensor& parameter : parameters)
    EXPECT_TRUE(parameter.requires_grad());
  EXPECT_FALSE(parent.first->counter.requires_grad());
}

TEST(Module, ParameterCountAddsEveryParameterButNoBuffer) {
  Parent parent;
  EXPECT_EQ(parent.parameter_count(), 1 + 3 * 2 + 4 * 2);
  EXPECT_EQ(parent.first->parameter_count(), 6);
}

TEST(Module, TrainAndEvalReachEveryDescendant) {
  Parent parent;
  EXPECT_TRUE(parent.is_training());
  parent.eval();
  EXPECT_FALSE(parent.is_training());
  EXPECT_FALSE(parent.first->is_training());
  EXPECT_FALSE(parent.second->is_training());
  parent.train();
  EXPECT_TRUE(parent.first->is_training());
  EXPECT_TRUE(parent.second->is_training());
  parent.second->eval();  // a child alone may differ until the parent switches again
  EXPECT_TRUE(parent.is_training());
  EXPECT_FALSE(parent.second->is_training());
}

TEST(Module, ZeroGradDropsEveryGradient) {
  Parent parent;
  sum(parent.forward(Tensor::ones({3, 2}))).backward();
  ASSERT_TRUE(parent.scale.grad().defined());
  ASSERT_TRUE(parent.first->weight.grad().defined());
  parent.zero_grad();
  for (const Tensor& parameter : parent.parameters())
    EXPECT_FALSE(parameter.grad().defined());
}

TEST(Module, RegistrationRejectsBadNamesAndValues) {
  Open module;
  EXPECT_NE(message_of([&] { module.register_parameter("a.b", Tensor::ones({1})); }).find("'a.b'"),
            std::string::npos);
  EXPECT_THROW(module.register_parameter("", Tensor::ones({1})), ValueError);
  EXPECT_THROW(module.register_parameter("labels", Tensor::from_int64({1}, {1})), DTypeError);
  EXPECT_THROW(module.register_parameter("undefined", Tensor()), DTypeError);
  EXPECT_THROW(module.register_buffer("x.y", Tensor::ones({1})), ValueError);
  EXPECT_THROW(module.register_module("child", std::shared_ptr<Leaf>()), ValueError);
}

TEST(Module, SummaryIndentsChildrenByDepth) {
  Parent parent;
  EXPECT_EQ(parent.summary(), "Parent\n  first: Leaf\n  second: Leaf\n");
}

TEST(Module, StateDictHoldsParametersAndBuffersByName) {
  Parent parent;
  const std::map<std::string, Tensor> state = parent.state_dict();
  ASSERT_EQ(state.size(), 5u);
  EXPECT_TRUE(state.at("scale").same(parent.scale));
  EXPECT_TRUE(state.at("first.counter").same(parent.first->counter));
  EXPECT_TRUE(state.at("second.weight").same(parent.second->weight));
}

TEST(Module, LoadStateDictCopiesIntoTheExistingTensors) {
  Parent source, target;
  copy_elements(Tensor::full({3, 2}, 7.0f), source.first->weight.detach());
  copy_elements(Tensor::full({4}, -5.0f), source.second->counter);
  const Tensor handle = target.first->weight;  // e.g. held by an optimizer
  target.load_state_dict(source.state_dict());

  EXPECT_TRUE(target.first->weight.same(handle));
  EXPECT_EQ(handle.to_vector<float>(), std::vector<float>(6, 7.0f));
  EXPECT_EQ(target.second->counter.to_vector<float>(), std::vector<float>(4, -5.0f));
  for (const auto& [name, tensor] : target.state_dict()) {
    EXPECT_EQ(tensor.to_vector<float>(), source.state_dict().at(name).to_vector<float>()) << name;
    EXPECT_FALSE(tensor.same(source.state_dict().at(name))) << name << " must be copied, not shared";
  }
  EXPECT_TRUE(target.first->weight.requires_grad());
}

TEST(Module, LoadStateDictListsEveryProblemAndChangesNothing) {
  Parent parent;
  std::map<std::string, Tensor> state;
  for (const auto& [name, tensor] : parent.state_dict())
    state.emplace(name, Tensor::full(tensor.shape(), 9.0f));
  state.erase("scale");                                                           // missing
  state.erase("second.counter");                                                  // missing
  state["first.weight"] = Tensor::zeros({2, 3});                                  // wrong shape
  state["second.weight"] = Tensor::from_int64({0, 0, 0, 0, 0, 0, 0, 0}, {4, 2});  // wrong dtype
  state["third.weight"] = Tensor::zeros({5});                                     // unexpected

  const std::string message = message_of([&] { parent.load_state_dict(state); });
  EXPECT_NE(message.find("load_state_dict: 5 entries do not fit this Parent"), std::string::npos) << message;
  for (const std::string expected :
       {"missing: scale [1]", "missing: second.counter [4]",
        "first.weight: expected float32 [3,2], got float32 [2,3]",
        "second.weight: expected float32 [4,2], got int64 [4,2]", "unexpected: third.weight [5]"})
    EXPECT_NE(message.find(expected), std::string::npos) << "no '" << expected << "' in:\n" << message;
  EXPECT_THROW(parent.load_state_dict(state), ShapeError);

  // Nothing was copied, not even the entries that fit.
  EXPECT_EQ(parent.first->counter.to_vector<float>(), std::vector<float>(3, 101.0f));
}

// Every value of the module's state, by name, copied to the host.
std::map<std::string, std::vector<float>> values_of(const Module& module) {
  std::map<std::string, std::vector<float>> values;
  for (const auto& [name, tensor] : module.state_dict())
    values.emplace(name, tensor.to_vector<float>());
  return values;
}

TEST(Module, ToCpuKeepsValuesHandlesAndGradients) {
  Parent parent;
  sum(parent.forward(Tensor::ones({3, 2}))).backward();
  const auto before = values_of(parent);
  const std::vector<Tensor> handles = parent.parameters();
  const std::vector<float> grad = parent.scale.grad().to_vector<float>();

  parent.to(Device::cpu());
  EXPECT_EQ(values_of(parent), before);
  const std::vector<Tensor> after = parent.parameters();
  ASSERT_EQ(after.size(), handles.size());
  for (std::size_t i = 0; i < after.size(); ++i) {
    EXPECT_TRUE(after[i].same(handles[i])) << i;
    EXPECT_TRUE(after[i].requires_grad()) << i;
    EXPECT_EQ(after[i].device(), Device::cpu()) << i;
  }
  EXPECT_EQ(parent.scale.grad().to_vector<float>(), grad);
}

TEST(Module, ToCudaMovesEverythingInPlaceOrThrowsDeviceError) {
  Parent parent;
  Open counted;  // an integer buffer stays on the host
  counted.register_buffer("count", Tensor::from_int64({5}, {}));
  const auto before = values_of(parent);
  const Tensor handle = parent.first->weight;

  if (!cuda_is_available()) {
    EXPECT_THROW(parent.to(Device::cuda()), DeviceError);
    for (const auto& [name, tensor] : parent.state_dict())
      EXPECT_EQ(tensor.device(), Device::cpu()) << name << " must not move when the move fails";
    EXPECT_EQ(values_of(parent), before);
    return;
  }
  parent.to(Device::cuda());
  for (const auto& [name, tensor] : parent.state_dict())
    EXPECT_EQ(tensor.device(), Device::cuda()) << name;
  EXPECT_TRUE(parent.first->weight.same(handle));
  EXPECT_EQ(handle.device(), Device::cuda());
  EXPECT_EQ(values_of(parent), before);
  counted.to(Device::cuda());
  EXPECT_EQ(counted.named_buffers()[0].second.device(), Device::cpu());
  EXPECT_EQ(counted.named_buffers()[0].second.item<std::int64_t>(), 5);
}

}  // namespace
}  // namespace dscope
