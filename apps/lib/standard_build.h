// The standard build: a hyperparameter search that picks the best model, openly (a leaderboard of every
// trial), efficiently (successive halving: apps/lib/successive_halving.h) and resumably (run the same
// command again after an interruption and it continues; after it finished, it returns at once).
//
// DIR receives what a quick build writes (model.safetensors of the winning trial with its threshold,
// split.csv, training.jsonl, report.* scored on the held-out test split, with the winning configuration named
// in report.md), plus leaderboard.csv / leaderboard.md, search_state.json and trials/<id>/ (each trial's
// checkpoints and log).
#pragma once

#include <filesystem>
#include <string>

#include "apps/lib/build_recipe.h"
#include "apps/lib/search_space.h"
#include "apps/lib/successive_halving.h"

namespace dscope::apps {

struct StandardBuildOptions {
  BuildOptions build;
  SearchSpace space;
  HalvingOptions halving;  // trials, eta, rungs, max_epochs, budget_seconds, metric (seed: build.seed)
};

struct StandardBuildResult {
  SearchResult search;
  BuildResult final_model;  // empty model path when every trial failed
};

StandardBuildResult run_standard_build(const StandardBuildOptions& options);

}  // namespace dscope::apps
