// SGD, Adam and AdamW: five steps against PyTorch (tests/fixtures/optim.bin, written by gen_optim.py) with
// weight decay, momentum, Nesterov, two parameter groups and parameters that miss a gradient; a first step
// worked out by hand for each; saving and restoring the state (the next step is identical, bit for bit); and
// every misuse error. The fixture is PyTorch in float64 on dscope's float32 inputs, so the tolerance
// (1e-6 + 1e-5·|expected|) measures our float32 rounding over five steps.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "optim/adam.h"
#include "optim/sgd.h"
#include "tensor/random.h"
#include "tests/support/compare.h"
#include "tests/support/fixture.h"

namespace dscope {
namespace {

using optim::Adam;
using optim::AdamOptions;
using optim::AdamW;
using optim::Optimizer;
using optim::ParamGroup;
using optim::Sgd;
using optim::SgdOptions;

constexpr double kAtol = 1e-6, kRtol = 1e-5;

Tensor parameter(const std::vector<float>& values, const Shape& shape) {
  Tensor tensor = Tensor::from_vector(values, shape);
  tensor.set_requires_grad(true);
  return tensor;
}

Tensor random_parameter(const Shape& shape, Generator& generator) {
  Tensor tensor = Tensor::randn(shape, generator);
  tensor.set_requires_grad(true);
  return tensor;
}

::testing::AssertionResult close(const Tensor& actual, const Tensor& expected, const std::string& what) {
  if (actual.shape() != expected.shape())
    return ::testing::AssertionFailure()
           << what << ": shape " << actual.shape() << ", expected " << expected.shape();
  return testing::all_close(actual.to_vector<float>(), expected.to_vector<float>(), kAtol, kRtol, what);
}

// ---- Against PyTorch ----

// The optimizer a fixture case describes, over `params` grouped as the case says.
std::unique_ptr<Optimizer> optimizer_for_case(const testing::Fixture& fixture, const std::string& name,
                                              const std::vector<Tensor>& params) {
  const std::vector<std::int64_t> group_of_param =
      fixture.get(name + "/group_of_param").to_vector<std::int64_t>();
  const std::vector<float> learning_rates = fixture.get(name + "/group_learning_rate").to_vector<float>();
  const std::vector<float> weight_decays = fixture.get(name + "/group_weight_decay").to_vector<float>();
  const std::vector<float> settings = fixture.get(name + "/settings").to_vector<float>();
  std::vector<ParamGroup> groups(learning_rates.size());
  for (std::size_t g = 0; g < groups.size(); ++g) {
    groups[g].learning_rate = learning_rates[g];
    groups[g].weight_decay = weight_decays[g];
  }
  for (std::size_t p = 0; p < params.size(); ++p)
    groups[static_cast<std::size_t>(group_of_param[p])].params.push_back(params[p]);
  if (name.rfind("sgd", 0) == 0)
    return std::make_unique<Sgd>(groups, SgdOptions{settings[0], settings[1] != 0.0f});
  const AdamOptions options{settings[0], settings[1], settings[2]};
  if (name.rfind("adamw", 0) == 0) return std::make_unique<AdamW>(groups, options);
  return std::make_unique<Adam>(groups, options);
}

TEST(OptimizerGolden, FiveStepsMatchPyTorch) {
  const std::optional<testing::Fixture> fixture = testing::load_fixture("optim.bin");
  ASSERT_TRUE(fixture.has_value());
  constexpr int kParams = 3, kSteps = 5;
  for (const std::string name :
       {"sgd_plain", "sgd_weight_decay", "sgd_momentum_weight_decay", "sgd_nesterov_weight_decay",
        "sgd_momentum_two_groups_skip", "adam", "adam_weight_decay", "adam_two_groups_skip", "adamw",
        "adamw_two_groups_skip"}) {
    SCOPED_TRACE(name);
    std::vector<Tensor> params;
    for (int p = 0; p < kParams; ++p) {
      params.push_back(fixture->get(name + "/initial/" + std::to_string(p)));
      params.back().set_requires_grad(true);
    }
    const std::unique_ptr<Optimizer> optimizer = optimizer_for_case(*fixture, name, params);
    for (int step = 0; step < kSteps; ++step) {
      const std::string at = name + "/step" + std::to_string(step);
      for (int p = 0; p < kParams; ++p) {
        const std::string grad = at + "/grad/" + std::to_string(p);
        params[p].set_grad(fixture->contains(grad) ? fixture->get(grad) : Tensor());
      }
      optimizer->step();
      for (int p = 0; p < kParams; ++p) {
        const std::string param = at + "/param/" + std::to_string(p);
        EXPECT_TRUE(close(params[p], fixture->get(param), param));
      }
    }
    EXPECT_EQ(optimizer->steps_taken(), kSteps);

    // The state dict holds exactly PyTorch's per-parameter state, under the same slot names.
    const std::map<std::string, Tensor> state = optimizer->state_dict();
    std::set<std::string> names;
    for (const auto& [key, value] : state)
      if (key != "step") names.insert(key);
    EXPECT_EQ(names, fixture->names_under(name + "/state/"));
    for (const std::string& key : fixture->names_under(name + "/state/")) {
      if (state.count(key) == 0) continue;
      const Tensor expected = fixture->get(name + "/state/" + key);
      if (expected.dtype() == DType::Int64) {
        EXPECT_EQ(state.at(key).to_vector<std::int64_t>(), expected.to_vector<std::int64_t>()) << key;
      } else {
        EXPECT_TRUE(close(state.at(key), expected, name + " state " + key));
      }
    }
    EXPECT_EQ(state.at("step").item<std::int64_t>(), kSteps);
  }
}

// ---- Worked by hand ----

TEST(Sgd, FirstStepsByHand) {
  // d = g + wd·p = [0.5 + 0.1, 0.25 − 0.2] = [0.6, 0.05]; p − lr·d = [1 − 0.06, −2 − 0.005].
  Tensor p = parameter({1.0f, -2.0f}, {2});
  Sgd plain({p}, 0.1f, 0.1f);
  p.set_grad(Tensor::from_vector({0.5f, 0.25f}, {2}));
  plain.step();
  EXPECT_TRUE(testing::all_close(p.to_vector<float>(), std::vector<double>{0.94, -2.005}, 1e-6, 0, "plain"));

  // With momentum 0.9 the first step equals plain SGD (the buffer starts as d); the second adds 0.9·buffer:
  // d₂ = [0.5 + 0.094, 0.25 − 0.2005] = [0.594, 0.0495], buffer = 0.9·[0.6, 0.05] + d₂ = [1.134, 0.0945].
  Tensor q = parameter({1.0f, -2.0f}, {2});
  Sgd momentum({q}, 0.1f, 0.1f, {.momentum = 0.9f});
  q.set_grad(Tensor::from_vector({0.5f, 0.25f}, {2}));
  momentum.step();
  EXPECT_TRUE(testing::all_close(q.to_vector<float>(), std::vector<double>{0.94, -2.005}, 1e-6, 0, "step 1"));
  momentum.step();
  EXPECT_TRUE(
      testing::all_close(q.to_vector<float>(), std::vector<double>{0.8266, -2.01445}, 1e-6, 0, "step 2"));

  // Nesterov steps along d + 0.9·buffer = 1.9·d on the first step.
  Tensor r = parameter({1.0f, -2.0f}, {2});
  Sgd nesterov({r}, 0.1f, 0.1f, {.momentum = 0.9f, .nesterov = true});
  r.set_grad(Tensor::from_vector({0.5f, 0.25f}, {2}));
  nesterov.step();
  EXPECT_TRUE(
      testing::all_close(r.to_vector<float>(), std::vector<double>{0.886, -2.0095}, 1e-6, 0, "nesterov"));
}

TEST(Adam, FirstStepByHand) {
  // After bias correction the first step's moments are g and g², so every element moves by
  // lr·g/(|g| + eps) ≈ lr·sign(g), whatever the gradient's scale.
  const std::vector<float> start = {1.0f, -2.0f, 0.5f};
  const Tensor grad = Tensor::from_vector({0.5f, -0.25f, 0.01f}, {3});
  Tensor p = parameter(start, {3});
  Adam adam({p}, 0.1f);
  p.set_grad(grad);
  adam.step();
  EXPECT_TRUE(testing::all_close(p.to_vector<float>(), std::vector<double>{0.9, -1.9, 0.4}, 1e-6, 0, "Adam"));

  // L2 weight decay enters the gradient, [0.6, −0.45, 0.06] here: its signs are unchanged, so is the step.
  Tensor q = parameter(start, {3});
  Adam adam_l2({q}, 0.1f, 0.1f);
  q.set_grad(grad);
  adam_l2.step();
  EXPECT_TRUE(testing::all_close(q.to_vector<float>(), std::vector<double>{0.9, -1.9, 0.4}, 1e-6, 0, "L2"));

  // AdamW first shrinks p by 1 − lr·wd = 0.99, then takes the same step.
  Tensor r = parameter(start, {3});
  AdamW adamw({r}, 0.1f, 0.1f);
  r.set_grad(grad);
  adamw.step();
  EXPECT_TRUE(
      testing::all_close(r.to_vector<float>(), std::vector<double>{0.89, -1.88, 0.395}, 1e-6, 0, "AdamW"));
}

// ---- Skipping, state, resuming ----

TEST(Optimizer, ParametersWithoutGradientAreSkipped) {
  Generator generator(11);
  Tensor with_grad = random_parameter({3, 2}, generator);
  Tensor without_grad = random_parameter({4}, generator);
  const std::vector<float> before = without_grad.to_vector<float>();
  for (const bool use_adam : {false, true}) {
    std::unique_ptr<Optimizer> optimizer;
    if (use_adam)
      optimizer = std::make_unique<Adam>(std::vector<Tensor>{with_grad, without_grad}, 0.1f, 0.1f);
    else
      optimizer = std::make_unique<Sgd>(std::vector<Tensor>{with_grad, without_grad}, 0.1f, 0.1f,
                                        SgdOptions{.momentum = 0.9f});
    with_grad.set_grad(Tensor::randn({3, 2}, generator));
    optimizer->step();
    optimizer->step();
    EXPECT_EQ(without_grad.to_vector<float>(), before);
    for (const auto& [key, value] : optimizer->state_dict())
      EXPECT_NE(key.rfind("0.1.", 0), 0u) << key << ": state for a parameter that never had a gradient";
  }
}

TEST(Optimizer, ZeroGradDropsEveryGradient) {
  Tensor a = parameter({1, 2}, {2}), b = parameter({3}, {1});
  a.set_grad(Tensor::ones({2}));
  b.set_grad(Tensor::ones({1}));
  Sgd sgd(std::vector<ParamGroup>{{{a}, 0.1f, 0.0f}, {{b}, 0.2f, 0.0f}});
  sgd.zero_grad();
  EXPECT_FALSE(a.grad().defined());
  EXPECT_FALSE(b.grad().defined());
  sgd.set_learning_rate(0.5f);
  EXPECT_EQ(sgd.groups()[0].learning_rate, 0.5f);
  EXPECT_EQ(sgd.groups()[1].learning_rate, 0.5f);
}

// Two copies of the same parameters, for running one optimizer beside another.
std::vector<Tensor> copies(const std::vector<Tensor>& params) {
  std::vector<Tensor> out;
  for (const Tensor& param : params) {
    out.push_back(dense_copy(param));
    out.back().set_requires_grad(true);
  }
  return out;
}

using MakeOptimizer = std::function<std::unique_ptr<Optimizer>(const std::vector<Tensor>&)>;

// Runs three steps, saves the state, restores it into a fresh optimizer over copies of the parameters, and
// checks that the next two steps agree bit for bit.
void expect_resume_is_exact(const MakeOptimizer& make, const std::string& what) {
  SCOPED_TRACE(what);
  Generator generator(5);
  std::vector<Tensor> params = {random_parameter({4, 3}, generator), random_parameter({3}, generator),
                                random_parameter({2, 2, 2}, generator)};
  const std::unique_ptr<Optimizer> original = make(params);
  const auto random_gradients = [&](const std::vector<Tensor>& targets, std::uint64_t seed) {
    Generator gradients(seed);
    for (const Tensor& param : targets)
      Tensor(param).set_grad(Tensor::randn(param.shape(), gradients));
  };
  for (std::uint64_t step = 0; step < 3; ++step) {
    random_gradients(params, step);
    original->step();
  }
  const std::map<std::string, Tensor> saved = original->state_dict();

  std::vector<Tensor> resumed_params = copies(params);
  const std::unique_ptr<Optimizer> resumed = make(resumed_params);
  resumed->load_state_dict(saved);
  EXPECT_EQ(resumed->steps_taken(), 3);
  for (std::uint64_t step = 3; step < 5; ++step) {
    random_gradients(params, step);
    random_gradients(resumed_params, step);
    original->step();
    resumed->step();
  }
  for (std::size_t p = 0; p < params.size(); ++p)
    EXPECT_EQ(resumed_params[p].to_vector<float>(), params[p].to_vector<float>()) << "parameter " << p;
  // The saved state is a snapshot: the steps taken since did not change it.
  const std::map<std::string, Tensor> now = original->state_dict();
  EXPECT_EQ(saved.at("step").item<std::int64_t>(), 3);
  EXPECT_EQ(now.at("step").item<std::int64_t>(), 5);
  for (const auto& [key, value] : saved) {
    if (value.dtype() == DType::Float32) {
      EXPECT_NE(value.to_vector<float>(), now.at(key).to_vector<float>()) << key;
    }
  }
}

TEST(Optimizer, StateDictRoundTripResumesBitForBit) {
  expect_resume_is_exact(
      [](const std::vector<Tensor>& p) {
        return std::make_unique<Sgd>(p, 0.05f, 1e-3f, SgdOptions{.momentum = 0.9f, .nesterov = true});
      },
      "SGD Nesterov");
  expect_resume_is_exact(
      [](const std::vector<Tensor>& p) {
        return std::make_unique<Adam>(
            std::vector<ParamGroup>{{{p[0], p[2]}, 1e-2f, 1e-2f}, {{p[1]}, 3e-3f, 0.0f}});
      },
      "Adam, two groups");
  expect_resume_is_exact([](const std::vector<Tensor>& p) { return std::make_unique<AdamW>(p, 1e-2f); },
                         "AdamW");
}

// ---- The fused kernels' threaded path ----

TEST(Optimizer, LargeParameterUpdatesLikeSmallPieces) {
  // 100,003 elements take the OpenMP path of the update kernels; the same values split into small parameters
  // take the single-threaded one. Each element's arithmetic is the same, so the results must be identical.
  constexpr std::int64_t kLarge = 100003, kPieces = 7;
  Generator generator(21);
  const Tensor values = Tensor::randn({kLarge}, generator);
  const Tensor gradient = Tensor::randn({kLarge}, generator);
  for (const bool use_adam : {false, true}) {
    SCOPED_TRACE(use_adam ? "AdamW" : "SGD");
    Tensor large = dense_copy(values);
    std::vector<Tensor> pieces;
    for (std::int64_t k = 0, begin = 0; k < kPieces; ++k) {
      const std::int64_t length = (kLarge - begin) / (kPieces - k);
      pieces.push_back(dense_copy(values.narrow(0, begin, length)));
      pieces.back().set_grad(dense_copy(gradient.narrow(0, begin, length)));
      begin += length;
    }
    large.set_grad(dense_copy(gradient));
    std::unique_ptr<Optimizer> whole, split;
    if (use_adam) {
      whole = std::make_unique<AdamW>(std::vector<Tensor>{large}, 1e-2f, 0.1f);
      split = std::make_unique<AdamW>(pieces, 1e-2f, 0.1f);
    } else {
      whole = std::make_unique<Sgd>(std::vector<Tensor>{large}, 0.1f, 1e-2f, SgdOptions{.momentum = 0.9f});
      split = std::make_unique<Sgd>(pieces, 0.1f, 1e-2f, SgdOptions{.momentum = 0.9f});
    }
    for (int step = 0; step < 2; ++step) {
      whole->step();
      split->step();
    }
    std::vector<float> joined;
    for (const Tensor& piece : pieces) {
      const std::vector<float> part = piece.to_vector<float>();
      joined.insert(joined.end(), part.begin(), part.end());
    }
    EXPECT_EQ(joined, large.to_vector<float>());
  }
}

// ---- Misuse ----

template <typename ErrorType, typename Body>
void expect_error(Body body, const std::vector<std::string>& fragments) {
  try {
    body();
    ADD_FAILURE() << "expected an error mentioning '" << fragments.front() << "'";
  } catch (const ErrorType& error) {
    const std::string message = error.what();
    for (const std::string& fragment : fragments)
      EXPECT_NE(message.find(fragment), std::string::npos) << "'" << fragment << "' not in: " << message;
  }
}

TEST(Optimizer, BadHyperParametersAreRejected) {
  const Tensor p = parameter({1, 2, 3}, {3});
  expect_error<ValueError>([&] { Sgd({p}, -0.1f); }, {"learning rate", "-0.1"});
  expect_error<ValueError>([&] { Sgd({p}, 0.1f, -1e-4f); }, {"weight decay"});
  expect_error<ValueError>([&] { Sgd({p}, NAN); }, {"learning rate", "finite"});
  expect_error<ValueError>([&] { Sgd({p}, 0.1f, 0.0f, {.momentum = -0.5f}); }, {"SGD", "momentum"});
  expect_error<ValueError>([&] { Sgd({p}, 0.1f, 0.0f, {.nesterov = true}); }, {"Nesterov", "momentum"});
  expect_error<ValueError>([&] { Adam({p}, -1e-3f); }, {"learning rate"});
  expect_error<ValueError>([&] { Adam({p}, 1e-3f, 0.0f, {.beta1 = 1.0f}); }, {"Adam", "beta1", "[0, 1)"});
  expect_error<ValueError>([&] { AdamW({p}, 1e-3f, 0.0f, {.beta2 = -0.1f}); }, {"AdamW", "beta2"});
  expect_error<ValueError>([&] { Adam({p}, 1e-3f, 0.0f, {.epsilon = 0.0f}); }, {"epsilon"});
  expect_error<ValueError>([&] { Sgd(std::vector<Tensor>{}, 0.1f); }, {"no parameters"});
  expect_error<ValueError>([&] { Sgd({p, p}, 0.1f); }, {"more than once"});
  expect_error<ValueError>(
      [&] {
        Sgd(std::vector<ParamGroup>{{{p}, 0.1f, 0.0f}, {{p}, 0.2f, 0.0f}});
      },
      {"more than once"});
  expect_error<ValueError>([&] { Sgd({Tensor()}, 0.1f); }, {"defined float32"});
  Sgd sgd({p}, 0.1f);
  expect_error<ValueError>([&] { sgd.set_learning_rate(-1.0f); }, {"set_learning_rate", "-1"});
}

TEST(Optimizer, GradientOfAnotherShapeIsAnError) {
  Tensor p = parameter({1, 2, 3, 4}, {2, 2});
  Sgd sgd({p}, 0.1f);
  p.impl()->grad = Tensor::ones({4}).impl_ptr();  // set_grad would refuse it; a buggy op might not
  expect_error<ShapeError>([&] { sgd.step(); }, {"[2,2]", "[4]"});
}

// An Adam that has taken one step on parameters [3,4] and [2].
struct SteppedAdam {
  Tensor a = parameter(std::vector<float>(12, 1.0f), {3, 4});
  Tensor b = parameter({1.0f, 2.0f}, {2});
  Adam adam{std::vector<Tensor>{a, b}, 0.1f};
  SteppedAdam() {
    a.set_grad(Tensor::ones({3, 4}));
    b.set_grad(Tensor::ones({2}));
    adam.step();
  }
};

TEST(Optimizer, LoadingAStateThatDoesNotFitNamesEachEntry) {
  SteppedAdam source;
  const std::map<std::string, Tensor> good = source.adam.state_dict();
  SteppedAdam target;
  const auto with = [&](const std::string& key, const Tensor& value) {
    std::map<std::string, Tensor> state = good;
    state[key] = value;
    return state;
  };
  const auto without = [&](const std::string& key) {
    std::map<std::string, Tensor> state = good;
    state.erase(key);
    return state;
  };
  expect_error<ShapeError>(
      [&] {
        target.adam.load_state_dict(with("0.0.exp_avg", Tensor::zeros({4, 3})));
      },
      {"0.0.exp_avg", "[3,4]", "[4,3]"});
  expect_error<ShapeError>([&] { target.adam.load_state_dict(with("0.1.step", Tensor::zeros({2}))); },
                           {"0.1.step", "int64"});
  expect_error<ShapeError>([&] { target.adam.load_state_dict(with("step", Tensor::scalar(1.0f))); },
                           {"step", "int64 scalar"});
  expect_error<ValueError>(
      [&] {
        target.adam.load_state_dict(with("0.0.momentum_buffer", Tensor::zeros({3, 4})));
      },
      {"unexpected: 0.0.momentum_buffer", "exp_avg"});
  expect_error<ValueError>(
      [&] {
        target.adam.load_state_dict(with("1.0.exp_avg", Tensor::zeros({3, 4})));
      },
      {"1.0.exp_avg", "no group 1"});
  expect_error<ValueError>(
      [&] {
        target.adam.load_state_dict(with("0.2.exp_avg", Tensor::zeros({3, 4})));
      },
      {"0.2.exp_avg", "no parameter 2"});
  expect_error<ValueError>([&] { target.adam.load_state_dict(with("momentum", Tensor::zeros({1}))); },
                           {"unexpected: momentum"});
  expect_error<ValueError>([&] { target.adam.load_state_dict(without("0.1.exp_avg_sq")); },
                           {"missing: 0.1.exp_avg_sq"});
  expect_error<ValueError>([&] { target.adam.load_state_dict(without("step")); }, {"missing: step"});
  // Several faults are listed together, and the optimizer keeps its state when a load fails.
  std::map<std::string, Tensor> two_faults = with("0.0.exp_avg", Tensor::zeros({4, 3}));
  two_faults.erase("0.1.exp_avg");
  expect_error<ShapeError>([&] { target.adam.load_state_dict(two_faults); },
                           {"2 entries", "0.0.exp_avg", "missing: 0.1.exp_avg"});
  EXPECT_EQ(target.adam.steps_taken(), 1);
  // An Adam state does not load into a plain SGD, which keeps no per-parameter state.
  Sgd sgd({target.a, target.b}, 0.1f);
  expect_error<ValueError>([&] { sgd.load_state_dict(good); }, {"no per-parameter state"});
}

}  // namespace
}  // namespace dscope
