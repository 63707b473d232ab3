// Learning-rate schedules: values worked by hand at chosen steps, PyTorch's schedulers over whole runs
// (tests/fixtures/optim.bin: StepLR, CosineAnnealingLR, LinearLR → CosineAnnealingLR, OneCycleLR), use as a
// std::function, and misuse.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <numbers>
#include <optional>
#include <string>
#include <vector>

#include "optim/schedule.h"
#include "tests/support/compare.h"
#include "tests/support/fixture.h"

namespace dscope {
namespace {

using optim::ConstantSchedule;
using optim::OneCycleSchedule;
using optim::Schedule;
using optim::StepDecaySchedule;
using optim::WarmupCosineSchedule;

// Learning rates of `schedule` at steps 0..count-1.
std::vector<float> rates(const Schedule& schedule, std::int64_t count) {
  std::vector<float> out;
  for (std::int64_t step = 0; step < count; ++step)
    out.push_back(schedule.learning_rate_at(step));
  return out;
}

::testing::AssertionResult rates_are(const Schedule& schedule, const std::vector<std::int64_t>& steps,
                                     const std::vector<double>& expected, const std::string& what) {
  std::vector<float> actual;
  for (const std::int64_t step : steps)
    actual.push_back(schedule.learning_rate_at(step));
  return testing::all_close(actual, expected, 1e-7, 1e-6, what);
}

TEST(Schedule, ConstantAndStepDecayByHand) {
  EXPECT_TRUE(rates_are(ConstantSchedule(0.1f), {0, 5, 100000}, {0.1, 0.1, 0.1}, "constant"));
  EXPECT_TRUE(rates_are(StepDecaySchedule(0.1f, 3, 0.5f), {0, 2, 3, 5, 6, 8, 9},
                        {0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125}, "step decay"));
}

TEST(Schedule, WarmupCosineByHand) {
  // Warm-up from 0 over 2 steps, then a half cosine from 1 at step 2 to 0 at step 10 (halfway at step 6).
  EXPECT_TRUE(rates_are(WarmupCosineSchedule(1.0f, 10, 2), {0, 1, 2, 6, 10, 50}, {0, 0.5, 1, 0.5, 0, 0},
                        "warm-up from 0"));
  // A floor of 0.1 lifts the cosine: 0.1 + 0.9 · (1 + cos(π/2)) / 2 = 0.55 halfway.
  EXPECT_TRUE(
      rates_are(WarmupCosineSchedule(1.0f, 10, 2, 0.1f), {2, 6, 10, 11}, {1, 0.55, 0.1, 0.1}, "floor"));
  // From a start factor of 0.1 over 4 steps: 0.1 + 0.9 · step/4.
  EXPECT_TRUE(rates_are(WarmupCosineSchedule(2.0f, 20, 4, 0.0f, 0.1f), {0, 2, 4}, {0.2, 1.1, 2.0}, "start"));
  // No warm-up: (1 + cos(π·step/4)) / 2.
  const double quarter = (1.0 + std::cos(std::numbers::pi / 4)) / 2.0;
  EXPECT_TRUE(rates_are(WarmupCosineSchedule(1.0f, 4), {0, 1, 2, 3, 4}, {1, quarter, 0.5, 1 - quarter, 0},
                        "plain cosine"));
}

TEST(Schedule, OneCycleByHand) {
  // max 1, 10 steps, pct_start 0.3: from 1/25 up to 1 at step 0.3·10 − 1 = 2, then down to 1/25/10⁴ at step
  // 9, where it stays. Halfway up (step 1) the cosine is at its midpoint: (0.04 + 1) / 2.
  EXPECT_TRUE(rates_are(OneCycleSchedule(1.0f, 10), {0, 1, 2, 9, 10, 1000}, {0.04, 0.52, 1, 4e-6, 4e-6, 4e-6},
                        "one-cycle"));
}

TEST(Schedule, MatchesPyTorchSchedulers) {
  const std::optional<testing::Fixture> fixture = testing::load_fixture("optim.bin");
  ASSERT_TRUE(fixture.has_value());
  const auto settings = [&](const std::string& name) {
    return fixture->get("schedule/" + name + "/settings").to_vector<float>();
  };
  const auto check = [&](const Schedule& schedule, const std::string& name) {
    const std::vector<float> expected = fixture->get("schedule/" + name + "/lr").to_vector<float>();
    EXPECT_TRUE(testing::all_close(rates(schedule, static_cast<std::int64_t>(expected.size())), expected,
                                   1e-9, 1e-5, name));
  };
  for (const std::string name : {"one_cycle_default", "one_cycle_custom"}) {
    const std::vector<float> s = settings(name);
    check(OneCycleSchedule(s[0], static_cast<std::int64_t>(s[1]), s[2], s[3], s[4]), name);
  }
  for (const std::string name : {"cosine", "warmup_cosine"}) {
    const std::vector<float> s = settings(name);
    check(WarmupCosineSchedule(s[0], static_cast<std::int64_t>(s[1]), static_cast<std::int64_t>(s[2]), s[3],
                               s[4]),
          name);
  }
  const std::vector<float> s = settings("step_decay");
  check(StepDecaySchedule(s[0], static_cast<std::int64_t>(s[1]), s[2]), "step_decay");
}

TEST(Schedule, IsAFunctionOfTheStep) {
  const std::function<float(std::int64_t)> schedule = WarmupCosineSchedule(1.0f, 10, 2);
  EXPECT_FLOAT_EQ(schedule(1), 0.5f);
  const WarmupCosineSchedule cosine(1.0f, 10, 2);
  const Schedule& base = cosine;
  EXPECT_EQ(base(6), cosine.learning_rate_at(6));
  // No hidden state: asking again, or out of order, gives the same rate.
  EXPECT_EQ(base(6), base.learning_rate_at(6));
}

template <typename Body>
void expect_value_error(Body body, const std::string& fragment) {
  try {
    body();
    ADD_FAILURE() << "expected a ValueError mentioning '" << fragment << "'";
  } catch (const ValueError& error) {
    EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
  }
}

TEST(Schedule, BadSettingsAreRejected) {
  expect_value_error([] { ConstantSchedule(-0.1f); }, "learning rate");
  expect_value_error([] { ConstantSchedule(0.1f).learning_rate_at(-1); }, "step must be >= 0");
  expect_value_error([] { StepDecaySchedule(0.1f, 0, 0.5f); }, "step_size");
  expect_value_error([] { StepDecaySchedule(0.1f, 3, -0.5f); }, "gamma");
  expect_value_error([] { WarmupCosineSchedule(0.1f, 10, 10); }, "warm-up steps");
  expect_value_error([] { WarmupCosineSchedule(0.1f, 10, -1); }, "warm-up steps");
  expect_value_error([] { WarmupCosineSchedule(0.1f, 10, 2, 0.2f); }, "minimum learning rate");
  expect_value_error([] { WarmupCosineSchedule(0.1f, 10, 2, 0.0f, 1.5f); }, "start factor");
  expect_value_error([] { OneCycleSchedule(0.1f, 1); }, "total steps");
  expect_value_error([] { OneCycleSchedule(0.1f, 10, 1.0f); }, "pct_start");
  expect_value_error([] { OneCycleSchedule(0.1f, 10, 0.05f); }, "rise");
  expect_value_error([] { OneCycleSchedule(0.1f, 10, 0.3f, 0.0f); }, "div_factor");
  expect_value_error([] { OneCycleSchedule(0.1f, 10, 0.3f, 25.0f, -1.0f); }, "final_div_factor");
}

}  // namespace
}  // namespace dscope
