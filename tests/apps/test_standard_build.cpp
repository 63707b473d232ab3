// The standard build's moving parts on a tiny dataset: a recipe's training stopped and resumed gives the
// same losses and weights as one uninterrupted run, with and without a weight average; a whole search writes
// its leaderboard and model, and run again after it finished changes nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/lib/standard_build.h"
#include "data/csv.h"
#include "nn/checkpoint.h"
#include "nn/safetensors.h"
#include "tests/apps/synthetic_folders.h"
#include "tests/data/temp_folder.h"

namespace dscope::apps {
namespace {

namespace fs = std::filesystem;

BuildOptions tiny_build(const testing::TempFolder& folder, const std::string& out) {
  BuildOptions options;
  options.data = folder / "images";
  options.out = folder / out;
  options.seed = 4;
  options.show_progress = false;
  options.log = stderr;
  return options;
}

Recipe tiny_recipe() {
  Recipe recipe;
  recipe.input_size = 16;
  recipe.batch_size = 8;
  recipe.epochs = 4;
  return recipe;
}

std::vector<double> losses(const fs::path& log) {
  std::vector<double> values;
  std::ifstream in(log);
  std::string line;
  while (std::getline(in, line))
    values.push_back(nlohmann::json::parse(line).at("train_loss").get<double>());
  return values;
}

// Every tensor of two safetensors files is bit for bit the same.
void expect_same_tensors(const fs::path& first, const fs::path& second) {
  const nn::TensorMap a = nn::read_safetensors(first).tensors;
  const nn::TensorMap b = nn::read_safetensors(second).tensors;
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, tensor] : a) {
    const Tensor& other = b.at(name);
    ASSERT_EQ(tensor.numel(), other.numel()) << name;
    ASSERT_EQ(tensor.dtype(), other.dtype()) << name;
    if (tensor.dtype() == DType::Float32) {
      const float *x = tensor.data<float>(), *y = other.data<float>();
      EXPECT_TRUE(std::equal(x, x + tensor.numel(), y)) << first << ": " << name << " differs";
    } else {
      const std::int64_t *x = tensor.data<std::int64_t>(), *y = other.data<std::int64_t>();
      EXPECT_TRUE(std::equal(x, x + tensor.numel(), y)) << first << ": " << name << " differs";
    }
  }
}

// Trains `recipe` for 4 epochs in one go and in two calls from two RecipeTraining objects (as two
// processes would), and expects the same losses and files.
void expect_resume_equals_uninterrupted(const Recipe& recipe, const std::vector<std::string>& files) {
  testing::TempFolder folder;
  testing::write_colour_folders(folder, "images", 12);
  BuildData data(tiny_build(folder, "out"), 16);
  {
    RecipeTraining whole(data, recipe, folder / "whole");
    whole.train_until(4);
  }
  {
    RecipeTraining first(data, recipe, folder / "parts");
    first.train_until(2);
    EXPECT_EQ(first.epochs_done(), 2);
  }
  RecipeTraining second(data, recipe, folder / "parts");
  EXPECT_EQ(second.epochs_done(), 2);
  second.train_until(4);
  EXPECT_EQ(losses(folder / "whole/training.jsonl").size(), 4u);
  EXPECT_EQ(losses(folder / "whole/training.jsonl"), losses(folder / "parts/training.jsonl"));
  for (const std::string& file : files)
    expect_same_tensors(folder / "whole" / file, folder / "parts" / file);
}

TEST(RecipeTraining, StoppedAndResumedEqualsUninterrupted) {
  expect_resume_equals_uninterrupted(tiny_recipe(), {"last.safetensors"});
}

TEST(RecipeTraining, StoppedAndResumedEqualsUninterruptedWithAWeightAverage) {
  Recipe recipe = tiny_recipe();
  recipe.weight_average = 0.9;
  expect_resume_equals_uninterrupted(recipe, {"last.safetensors", "average.safetensors", "best.safetensors"});
}

TEST(RecipeTraining, TheWeightAverageIsWhatIsValidatedAndKept) {
  // With a weight average the best model is the averaged one, which differs from the trained weights. After
  // one epoch that epoch is the best, so best.safetensors holds exactly the averages.
  testing::TempFolder folder;
  testing::write_colour_folders(folder, "images", 12);
  BuildData data(tiny_build(folder, "out"), 16);
  Recipe recipe = tiny_recipe();
  recipe.weight_average = 0.9;
  RecipeTraining training(data, recipe, folder / "run");
  training.train_until(1);
  ASSERT_EQ(training.best_epoch(), 1);
  const nn::TensorMap average = nn::read_safetensors(folder / "run/average.safetensors").tensors;
  const nn::TensorMap last = nn::read_safetensors(folder / "run/last.safetensors").tensors;
  bool any_differs = false;
  for (const auto& [name, tensor] : last) {
    if (tensor.dtype() != DType::Float32) continue;
    const std::vector<float> a = tensor.to_vector<float>(), b = average.at(name).to_vector<float>();
    any_differs = any_differs || a != b;
  }
  EXPECT_TRUE(any_differs) << "the averaged weights are the trained ones";
  expect_same_tensors(folder / "run/best.safetensors", folder / "run/average.safetensors");
}

TEST(StandardBuild, SearchesWritesTheLeaderboardAndDoesNothingWhenRunAgain) {
  testing::TempFolder folder;
  testing::write_colour_folders(folder, "images", 12);
  StandardBuildOptions options;
  options.build = tiny_build(folder, "search");
  options.space = SearchSpace::from_json(
      {{"depths", {8}}, {"width_multipliers", {0.5, 1.0}}, {"input_sizes", {16}}, {"batch_sizes", {8}}},
      "test space");
  options.halving.trials = 3;
  options.halving.rungs = 2;
  options.halving.max_epochs = 3;
  const StandardBuildResult result = run_standard_build(options);
  ASSERT_GE(result.search.best, 0);
  const data::CsvTable leaderboard = data::read_csv(folder / "search/leaderboard.csv");
  ASSERT_EQ(leaderboard.records.size(), 3u);
  EXPECT_EQ(leaderboard.records[0].fields[2], "completed");  // 3 trials, eta 3: one reaches the last rung
  EXPECT_EQ(leaderboard.records[1].fields[2], "stopped");
  for (const char* name : {"model.safetensors", "report.md", "report.json", "split.csv", "training.jsonl",
                           "leaderboard.md", "search_state.json"})
    EXPECT_TRUE(fs::exists(folder / "search" / name)) << name;
  std::ostringstream report;
  report << std::ifstream(folder / "search/report.md").rdbuf();
  EXPECT_NE(report.str().find("The winner is trial " + std::to_string(result.search.best)),
            std::string::npos);
  EXPECT_EQ(nn::read_model_card(folder / "search/model.safetensors").decision.name, "possible_cancer");

  const auto modified = fs::last_write_time(folder / "search/model.safetensors");
  const StandardBuildResult again = run_standard_build(options);
  EXPECT_EQ(again.search.trials_run_now, 0);
  EXPECT_EQ(again.search.best, result.search.best);
  EXPECT_EQ(fs::last_write_time(folder / "search/model.safetensors"), modified);
}

}  // namespace
}  // namespace dscope::apps
