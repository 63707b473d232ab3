// Successive halving with a scripted runner (each trial's metric is a function of its id and epochs), so
// the bookkeeping is tested exactly: how many trials each rung promotes, the leaderboard, resuming after an
// interruption between trials with the same final result, running again after the end doing nothing, and
// a diverging trial marked failed while the search goes on. The search space draws recipes from a seed.
#include <gtest/gtest.h>

#include <fstream>

#include "apps/lib/search_space.h"
#include "apps/lib/successive_halving.h"
#include "data/csv.h"
#include "tests/data/temp_folder.h"
#include "tests/support/expect_error.h"

namespace dscope::apps {
namespace {

namespace fs = std::filesystem;

// Trial i improves with epochs at a rate that depends on i, so the ranking is known: higher ids are better,
// except that trial `diverging` fails at its first rung.
struct ScriptedRunner {
  std::int64_t diverging = -1;
  std::vector<std::pair<std::int64_t, std::int64_t>> calls;  // (trial, epochs)
  double operator()(TrialRecord& record, std::int64_t epochs) {
    calls.emplace_back(record.id, epochs);
    if (record.id == diverging) throw DivergenceError("training diverged: loss nan at epoch 1");
    const double value = 0.1 * static_cast<double>(record.id) + 0.01 * static_cast<double>(epochs);
    record.validation = {{"accuracy", value}, {"balanced_accuracy", value}};
    return value;
  }
};

HalvingOptions nine_trials() {
  HalvingOptions options;
  options.trials = 9;
  options.eta = 3;
  options.rungs = 3;
  options.max_epochs = 9;
  return options;
}

Recipe recipe_for(std::int64_t id) {
  Recipe recipe;
  recipe.learning_rate = 0.01f * static_cast<float>(id + 1);
  return recipe;
}

SearchResult search(const HalvingOptions& options, const fs::path& state, ScriptedRunner& runner) {
  return run_successive_halving(
      options, state, recipe_for, nlohmann::json{{"space", "test"}},
      [&](TrialRecord& record, std::int64_t epochs) { return runner(record, epochs); });
}

TEST(SuccessiveHalving, RungEpochsGrowByEta) {
  EXPECT_EQ(rung_epochs(nine_trials()), (std::vector<std::int64_t>{1, 3, 9}));
  HalvingOptions options = nine_trials();
  options.max_epochs = 4;
  EXPECT_EQ(rung_epochs(options), (std::vector<std::int64_t>{1, 2, 4}));  // ceil, and each rung longer
}

TEST(SuccessiveHalving, PromotesTheBestThirdAtEachRung) {
  testing::TempFolder folder;
  ScriptedRunner runner;
  const SearchResult result = search(nine_trials(), folder / "state.json", runner);
  EXPECT_TRUE(result.finished);
  EXPECT_EQ(result.trials_run_now, 9 + 3 + 1);
  std::map<std::int64_t, std::int64_t> per_rung;
  for (const auto& [trial, epochs] : runner.calls)
    ++per_rung[epochs];
  EXPECT_EQ(per_rung, (std::map<std::int64_t, std::int64_t>{{1, 9}, {3, 3}, {9, 1}}));
  EXPECT_EQ(result.best, 8);
  EXPECT_EQ(result.trials[8].status, "completed");
  EXPECT_EQ(result.trials[7].status, "stopped");
  EXPECT_EQ(result.trials[7].rung, 1);
  EXPECT_EQ(result.trials[0].rung, 0);
  EXPECT_EQ(result.trials[8].rung_metrics.size(), 3u);

  write_leaderboard(folder / "leaderboard.csv", folder / "leaderboard.md", result, "balanced_accuracy");
  const data::CsvTable table = data::read_csv(folder / "leaderboard.csv");
  ASSERT_EQ(table.records.size(), 9u);
  EXPECT_EQ(table.records[0].fields[1], "8");  // trial 8 first
  EXPECT_EQ(table.records[0].fields[2], "completed");
  EXPECT_EQ(table.records[1].fields[1], "7");
  EXPECT_EQ(table.records[8].fields[1], "0");
  std::ostringstream markdown;
  markdown << std::ifstream(folder / "leaderboard.md").rdbuf();
  EXPECT_NE(markdown.str().find("| 1 | 8 | completed |"), std::string::npos) << markdown.str();
}

TEST(SuccessiveHalving, ResumesAfterAnInterruptionWithTheSameResult) {
  testing::TempFolder folder;
  ScriptedRunner uninterrupted_runner;
  const SearchResult uninterrupted = search(nine_trials(), folder / "a.json", uninterrupted_runner);

  // Interrupted after 10 trial-rungs (all of rung 0 and one of rung 1), as a kill between trials would.
  HalvingOptions options = nine_trials();
  std::int64_t done = 0;
  options.on_trial_done = [&](const std::vector<TrialRecord>&, double) {
    if (++done == 10) throw std::runtime_error("interrupted");
  };
  ScriptedRunner first;
  EXPECT_THROW(search(options, folder / "b.json", first), std::runtime_error);
  EXPECT_EQ(first.calls.size(), 10u);

  ScriptedRunner second;
  const SearchResult resumed = search(nine_trials(), folder / "b.json", second);
  EXPECT_EQ(second.calls.size(), 3u);  // the two rung-1 trials left and the final one: nothing twice
  EXPECT_EQ(resumed.best, uninterrupted.best);
  write_leaderboard(folder / "a.csv", folder / "a.md", uninterrupted, "m");
  write_leaderboard(folder / "b.csv", folder / "b.md", resumed, "m");
  const auto rows_of = [](const fs::path& file) {
    std::vector<std::vector<std::string>> rows;
    for (const data::CsvRecord& record : data::read_csv(file).records) {
      std::vector<std::string> fields = record.fields;
      fields[8] = "";  // wall time differs
      rows.push_back(fields);
    }
    return rows;
  };
  EXPECT_EQ(rows_of(folder / "a.csv"), rows_of(folder / "b.csv"));

  // Run again after the end: nothing trains, nothing changes.
  ScriptedRunner third;
  const SearchResult again = search(nine_trials(), folder / "b.json", third);
  EXPECT_TRUE(third.calls.empty());
  EXPECT_EQ(again.trials_run_now, 0);
  EXPECT_EQ(again.best, uninterrupted.best);
}

TEST(SuccessiveHalving, ADivergingTrialIsMarkedFailedAndTheSearchGoesOn) {
  testing::TempFolder folder;
  ScriptedRunner runner;
  runner.diverging = 8;  // the one that would have won
  const SearchResult result = search(nine_trials(), folder / "state.json", runner);
  EXPECT_EQ(result.trials[8].status, "failed");
  EXPECT_NE(result.trials[8].error.find("diverged"), std::string::npos);
  EXPECT_EQ(result.best, 7);
  EXPECT_EQ(result.trials[7].status, "completed");
  write_leaderboard(folder / "l.csv", folder / "l.md", result, "m");
  const data::CsvTable table = data::read_csv(folder / "l.csv");
  EXPECT_EQ(table.records.back().fields[1], "8");  // failed last
  EXPECT_EQ(table.records.back().fields[2], "failed");
  EXPECT_NE(table.records.back().fields.back().find("diverged"), std::string::npos);
}

TEST(SuccessiveHalving, AStateFromAnotherSearchIsRefused) {
  testing::TempFolder folder;
  ScriptedRunner runner;
  search(nine_trials(), folder / "state.json", runner);
  HalvingOptions other = nine_trials();
  other.eta = 2;
  testing::expect_error<ValueError>([&] { search(other, folder / "state.json", runner); },
                                    {"eta", "other settings"});
}

TEST(Recipe, TheSamplingPowerIsKeptDescribedAndDefaultsToFullBalanceInOldRecipes) {
  Recipe recipe;
  recipe.sampling_power = 0.5;
  EXPECT_EQ(recipe_from_json(recipe_to_json(recipe)).sampling_power, 0.5);
  EXPECT_NE(recipe.describe().find("balanced(0.5)"), std::string::npos) << recipe.describe();
  nlohmann::json old = recipe_to_json(recipe);
  old.erase("sampling_power");
  EXPECT_EQ(recipe_from_json(old).sampling_power, 1.0);
  recipe.sampling_power = 1.5;
  testing::expect_error<ValueError>([&] { recipe.validate(); }, {"sampling power 1.5"});
}

TEST(SearchSpace, SamplesFromTheSeedAndReadsOverrides) {
  const SearchSpace space;
  Generator a(5), b(5), c(6);
  const Recipe first = space.sample(a, 12), same = space.sample(b, 12), other = space.sample(c, 12);
  EXPECT_EQ(recipe_to_json(first), recipe_to_json(same));
  EXPECT_NE(recipe_to_json(first), recipe_to_json(other));
  EXPECT_EQ(first.epochs, 12);
  EXPECT_NO_THROW(first.validate());
  EXPECT_EQ(recipe_to_json(recipe_from_json(recipe_to_json(first))), recipe_to_json(first));

  const SearchSpace narrow = SearchSpace::from_json(
      {{"depths", {14}}, {"sgd_learning_rate", {0.05, 0.05}}, {"optimizers", {"sgd"}}}, "s.json");
  Generator g(1);
  const Recipe drawn = narrow.sample(g, 3);
  EXPECT_EQ(drawn.depth, 14);
  EXPECT_FLOAT_EQ(drawn.learning_rate, 0.05f);
  testing::expect_error<DataError>(
      [] {
        SearchSpace::from_json({{"depth", {8}}}, "s.json");
      },
      {"s.json", "'depth' is not a field"});
  testing::expect_error<DataError>([] { SearchSpace::from_json({{"depths", {7}}}, "s.json"); }, {"depth 7"});
  testing::expect_error<DataError>(
      [] {
        SearchSpace::from_json({{"weight_decay", {0.0, 1e-3}}}, "s.json");
      },
      {"'weight_decay'"});
}

}  // namespace
}  // namespace dscope::apps
