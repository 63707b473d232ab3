// Successive halving (Jamieson & Talwalkar 2016; the synchronous form of ASHA, Li et al. 2020): many
// configurations start with a small budget of epochs, and at each rung only the best 1/eta continue, with eta
// times the budget. Most compute goes to the configurations that look best, and a bad learning rate costs a
// few epochs instead of a full training.
//
// Budgets, in epochs, for rungs 0..R-1: max_epochs / eta^(R-1-r), rounded up, each at least one more than
// the last. A promoted trial continues training where it stopped (its checkpoint), so its schedule is planned
// for max_epochs from the start and a rung only moves the stopping point.
//
// The search is resumable: its state (every trial's configuration, status, metrics per rung, wall time) is
// written to a JSON file after every trial of every rung, and the runner keeps each trial's checkpoint. Run
// again, the search skips what its state says is done, and the promotions, being a pure function of the
// recorded metrics, come out the same; run after it finished, it does nothing. A trial that fails (its loss
// diverges) is marked failed with the reason, never promoted, and the search goes on.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/lib/build_recipe.h"

namespace dscope::apps {

struct TrialRecord {
  std::int64_t id = 0;
  Recipe recipe;
  std::string status =
      "pending";            // pending, stopped (not promoted), completed (top rung), failed, out_of_budget
  std::int64_t rung = -1;   // the highest rung finished
  std::int64_t epochs = 0;  // epochs trained so far
  std::vector<double> rung_metrics;          // the selection metric at the end of each rung finished
  std::map<std::string, double> validation;  // validation metrics at the trial's best epoch so far
  double metric = 0.0;                       // the selection metric of the best epoch so far
  double seconds = 0.0;                      // wall time spent training it
  std::string error;                         // why it failed
};

// Trains one trial up to a number of epochs, resuming from wherever the trial stopped before, and returns
// the best validation value of the selection metric so far (filling record.validation). May throw
// DivergenceError (the trial fails; the search goes on); any other exception ends the search, its state
// saved up to the last finished trial.
using TrialRunner = std::function<double(TrialRecord& record, std::int64_t epochs)>;

struct HalvingOptions {
  std::int64_t trials = 9;       // configurations drawn for rung 0
  std::int64_t eta = 3;          // 1/eta of each rung is promoted
  std::int64_t rungs = 3;        // 1 is plain random search
  std::int64_t max_epochs = 27;  // the budget of the last rung
  double budget_seconds = 0.0;   // wall-time budget over all runs of the search (0: none)
  std::uint64_t seed = 0;
  std::string metric = "balanced_accuracy";
  // Called after every trial of a rung, with the state just saved: progress displays, and tests that
  // simulate an interruption by throwing.
  // `elapsed_seconds` counts every run of the search, as the budget does.
  std::function<void(const std::vector<TrialRecord>& trials, double elapsed_seconds)> on_trial_done;
  std::FILE* log = nullptr;  // one line per trial and rung; null: quiet
};

// The epochs of each rung.
std::vector<std::int64_t> rung_epochs(const HalvingOptions& options);

struct SearchResult {
  std::vector<TrialRecord> trials;
  std::int64_t best = -1;  // id of the best trial (highest rung reached, then best metric); -1 if all failed
  bool finished = false;   // every rung done (false when the budget ran out first)
  std::int64_t trials_run_now = 0;  // trial-rungs this call trained (0 when resuming a finished search)
};

// Runs (or resumes) the search whose state lives in `state_file`. `make_recipe` draws trial i's recipe
// (called only for a new search). Throws ValueError when the state file belongs to a different search
// (other options or space), naming what differs.
SearchResult run_successive_halving(const HalvingOptions& options, const std::filesystem::path& state_file,
                                    const std::function<Recipe(std::int64_t trial)>& make_recipe,
                                    const nlohmann::json& space_description, const TrialRunner& runner);

// The leaderboard's order: a trial that did not fail before one that did, then the higher rung, then the
// better metric, then the lower id.
bool ranks_before(const TrialRecord& a, const TrialRecord& b);

// The leaderboard: one row per trial, best first (highest rung, then metric; failed last), as CSV and as a
// markdown table.
void write_leaderboard(const std::filesystem::path& csv, const std::filesystem::path& markdown,
                       const SearchResult& result, const std::string& metric);

}  // namespace dscope::apps
