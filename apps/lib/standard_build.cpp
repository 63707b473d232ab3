#include "apps/lib/standard_build.h"

#include <optional>
#include <sstream>

#include "apps/lib/progress.h"
#include "tensor/error.h"

namespace dscope::apps {
namespace fs = std::filesystem;

StandardBuildResult run_standard_build(const StandardBuildOptions& given) {
  StandardBuildOptions options = given;
  options.halving.seed = options.build.seed;
  check_selection_metric(options.halving.metric);
  std::FILE* log = options.build.log;
  fs::create_directories(options.build.out);

  // Trial recipes are drawn from the seed alone, so a resumed search draws the same ones.
  Generator generator(options.build.seed ^ 0x5EA5C4B0D1A7ULL);
  std::vector<Recipe> recipes;
  for (std::int64_t id = 0; id < options.halving.trials; ++id)
    recipes.push_back(options.space.sample(generator, options.halving.max_epochs));
  const auto first_input = recipes.empty() ? Recipe().input_size : recipes.front().input_size;
  // The data is imported and decoded only when a trial has to train or the model has to be finished: a
  // search run again after it finished returns at once.
  std::optional<BuildData> built;
  const auto data = [&]() -> BuildData& {
    if (!built) built.emplace(options.build, first_input);
    return *built;
  };

  const fs::path trials_folder = options.build.out / "trials";
  const TrialRunner runner = [&](TrialRecord& record, std::int64_t epochs) {
    std::fprintf(log, "trial %lld to %lld epochs: %s\n", static_cast<long long>(record.id),
                 static_cast<long long>(epochs), record.recipe.describe().c_str());
    RecipeTraining training(data(), record.recipe, trials_folder / std::to_string(record.id),
                            options.halving.metric);
    const double value = training.train_until(epochs);
    record.validation = training.best_validation();
    return value;
  };
  options.halving.log = log;
  options.halving.on_trial_done = [&, outer = given.halving.on_trial_done](
                                      const std::vector<TrialRecord>& trials, double elapsed) {
    std::int64_t done = 0, running = 0, left = 0, failed = 0;
    const TrialRecord* best = nullptr;
    for (const TrialRecord& trial : trials) {
      if (trial.status == "in_progress")
        ++running;
      else if (trial.status == "pending" || trial.status == "out_of_budget")
        ++left;
      else
        ++done;
      if (trial.status == "failed") ++failed;
      if (trial.rung >= 0 && trial.status != "failed" && (best == nullptr || ranks_before(trial, *best)))
        best = &trial;
    }
    std::fprintf(log, "search: %lld done (%lld failed), %lld between rungs, %lld not started; best so far ",
                 static_cast<long long>(done), static_cast<long long>(failed),
                 static_cast<long long>(running), static_cast<long long>(left));
    if (best == nullptr)
      std::fprintf(log, "none");
    else
      std::fprintf(log, "trial %lld (rung %lld, %s %.4f)", static_cast<long long>(best->id),
                   static_cast<long long>(best->rung), options.halving.metric.c_str(), best->metric);
    if (options.halving.budget_seconds > 0)
      std::fprintf(
          log, "; %s of the budget left",
          Progress::format_duration(std::max(0.0, options.halving.budget_seconds - elapsed)).c_str());
    std::fputc('\n', log);
    if (outer) outer(trials, elapsed);
  };

  StandardBuildResult result;
  result.search = run_successive_halving(
      options.halving, options.build.out / "search_state.json",
      [&](std::int64_t id) { return recipes[static_cast<std::size_t>(id)]; }, options.space.to_json(),
      runner);
  write_leaderboard(options.build.out / "leaderboard.csv", options.build.out / "leaderboard.md",
                    result.search, options.halving.metric);
  if (result.search.best < 0) {
    std::fprintf(log, "every trial failed: no model (see leaderboard.md)\n");
    return result;
  }
  const TrialRecord& best = result.search.trials[static_cast<std::size_t>(result.search.best)];
  if (result.search.trials_run_now == 0 && fs::exists(options.build.out / "model.safetensors") &&
      fs::exists(options.build.out / "report.json")) {
    std::fprintf(log, "the search in %s had finished already: nothing to do (trial %lld won)\n",
                 options.build.out.string().c_str(), static_cast<long long>(best.id));
    result.final_model.model = options.build.out / "model.safetensors";
    return result;
  }
  const fs::path best_folder = trials_folder / std::to_string(best.id);
  std::string rungs;
  for (const std::int64_t epochs : rung_epochs(options.halving)) {
    if (!rungs.empty()) rungs += '/';
    rungs += std::to_string(epochs);
  }
  std::ostringstream notes;
  notes << "Standard build: " << result.search.trials.size() << " trials by successive halving (eta "
        << options.halving.eta << ", rungs of " << rungs << " epochs), selected by validation "
        << options.halving.metric << "; see leaderboard.md. The winner is trial " << best.id << ": `"
        << best.recipe.describe() << "`, " << best.epochs << " epochs trained, " << options.halving.metric
        << " " << best.metric << " on validation. " << training_setting(options.build);
  result.final_model =
      finish_build(data(), {best_folder / "best.safetensors"}, best_folder / "training.jsonl", notes.str());
  return result;
}

}  // namespace dscope::apps
