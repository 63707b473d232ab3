#include "apps/lib/successive_halving.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "apps/lib/trainer.h"
#include "data/csv.h"
#include "tensor/error.h"

namespace dscope::apps {
namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

constexpr int kStateVersion = 1;

Json trial_to_json(const TrialRecord& trial) {
  return {{"id", trial.id},
          {"recipe", recipe_to_json(trial.recipe)},
          {"status", trial.status},
          {"rung", trial.rung},
          {"epochs", trial.epochs},
          {"rung_metrics", trial.rung_metrics},
          {"validation", trial.validation},
          {"metric", trial.metric},
          {"seconds", trial.seconds},
          {"error", trial.error}};
}

TrialRecord trial_from_json(const Json& json) {
  TrialRecord trial;
  trial.id = json.at("id").get<std::int64_t>();
  trial.recipe = recipe_from_json(json.at("recipe"));
  trial.status = json.at("status").get<std::string>();
  trial.rung = json.at("rung").get<std::int64_t>();
  trial.epochs = json.at("epochs").get<std::int64_t>();
  trial.rung_metrics = json.at("rung_metrics").get<std::vector<double>>();
  trial.validation = json.at("validation").get<std::map<std::string, double>>();
  trial.metric = json.at("metric").get<double>();
  trial.seconds = json.at("seconds").get<double>();
  trial.error = json.at("error").get<std::string>();
  return trial;
}

// What identifies a search: resuming with other settings would mix two searches in one leaderboard. The
// time budget is left out, so that a search stopped by its budget can be continued with a larger one.
Json signature(const HalvingOptions& options, const Json& space) {
  return {{"trials", options.trials},
          {"eta", options.eta},
          {"rungs", options.rungs},
          {"max_epochs", options.max_epochs},
          {"seed", options.seed},
          {"metric", options.metric},
          {"space", space}};
}

void save_state(const fs::path& file, const Json& signature_json, double elapsed,
                const std::vector<TrialRecord>& trials) {
  Json state = {{"version", kStateVersion}, {"signature", signature_json}, {"elapsed_seconds", elapsed}};
  state["trials"] = Json::array();
  for (const TrialRecord& trial : trials)
    state["trials"].push_back(trial_to_json(trial));
  // Written beside and renamed over, so a kill during the write leaves the previous state intact.
  const fs::path partial = fs::path(file.string() + ".partial");
  {
    std::ofstream out(partial);
    DSCOPE_CHECK(out.good(), IoError, "cannot write the search state ", partial.string());
    out << state.dump(2) << '\n';
    DSCOPE_CHECK(out.good(), IoError, "writing the search state ", partial.string(), " failed");
  }
  fs::rename(partial, file);
}

}  // namespace

bool ranks_before(const TrialRecord& a, const TrialRecord& b) {
  const bool a_failed = a.status == "failed", b_failed = b.status == "failed";
  if (a_failed != b_failed) return !a_failed;
  if (a.rung != b.rung) return a.rung > b.rung;
  if (a.metric != b.metric) return a.metric > b.metric;
  return a.id < b.id;
}

std::vector<std::int64_t> rung_epochs(const HalvingOptions& options) {
  std::vector<std::int64_t> epochs(static_cast<std::size_t>(options.rungs));
  for (std::int64_t r = options.rungs - 1; r >= 0; --r) {
    const double divisor =
        std::pow(static_cast<double>(options.eta), static_cast<double>(options.rungs - 1 - r));
    epochs[static_cast<std::size_t>(r)] = std::max<std::int64_t>(
        1, static_cast<std::int64_t>(std::ceil(static_cast<double>(options.max_epochs) / divisor)));
  }
  for (std::size_t r = 1; r < epochs.size(); ++r)
    epochs[r] = std::max(epochs[r], epochs[r - 1] + 1);
  return epochs;
}

SearchResult run_successive_halving(const HalvingOptions& options, const fs::path& state_file,
                                    const std::function<Recipe(std::int64_t trial)>& make_recipe,
                                    const Json& space_description, const TrialRunner& runner) {
  DSCOPE_CHECK(
      options.trials >= 1 && options.eta >= 2 && options.rungs >= 1 && options.max_epochs >= options.rungs,
      ValueError, "search: trials ", options.trials, ", eta ", options.eta, ", rungs ", options.rungs,
      " and max epochs ", options.max_epochs,
      " must satisfy trials >= 1, eta >= 2, rungs >= 1 and max epochs >= rungs");
  const Json identity = signature(options, space_description);
  SearchResult result;
  double elapsed_before = 0.0;
  if (fs::exists(state_file)) {
    std::ifstream in(state_file);
    Json state;
    try {
      state = Json::parse(in);
      if (state.at("version").get<int>() != kStateVersion) throw DataError("another version");
      elapsed_before = state.at("elapsed_seconds").get<double>();
      for (const Json& trial : state.at("trials"))
        result.trials.push_back(trial_from_json(trial));
    } catch (const std::exception& error) {
      throw DataError(detail::concat("search: the state file ", state_file.string(), " cannot be read (",
                                     error.what(), "); move it away to start a new search"));
    }
    if (state.at("signature") != identity) {
      std::string differs;
      for (const auto& [key, value] : identity.items())
        if (!state["signature"].contains(key) || state["signature"][key] != value) differs += " " + key;
      throw ValueError(detail::concat("search: ", state_file.string(),
                                      " belongs to a search with other settings (", differs,
                                      " ); use another output folder, or the same settings to resume it"));
    }
  } else {
    for (std::int64_t id = 0; id < options.trials; ++id) {
      TrialRecord trial;
      trial.id = id;
      trial.recipe = make_recipe(id);
      trial.recipe.epochs = options.max_epochs;
      result.trials.push_back(trial);
    }
    save_state(state_file, identity, 0.0, result.trials);
  }

  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return elapsed_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  const std::vector<std::int64_t> epochs = rung_epochs(options);
  std::vector<std::int64_t> candidates(result.trials.size());
  for (std::size_t i = 0; i < candidates.size(); ++i)
    candidates[i] = static_cast<std::int64_t>(i);
  bool out_of_budget = false;
  for (std::int64_t rung = 0; rung < options.rungs; ++rung) {
    for (const std::int64_t index : candidates) {
      TrialRecord& trial = result.trials[static_cast<std::size_t>(index)];
      if (trial.status == "failed" || trial.rung >= rung) continue;
      if (options.budget_seconds > 0.0 && elapsed() >= options.budget_seconds) {
        out_of_budget = true;
        trial.status = "out_of_budget";
        continue;
      }
      const auto trial_start = std::chrono::steady_clock::now();
      try {
        const double metric = runner(trial, epochs[static_cast<std::size_t>(rung)]);
        trial.rung = rung;
        trial.epochs = epochs[static_cast<std::size_t>(rung)];
        trial.rung_metrics.push_back(metric);
        trial.metric = metric;
        trial.status = rung + 1 == options.rungs ? "completed" : "in_progress";
      } catch (const DivergenceError& error) {
        trial.status = "failed";
        trial.error = error.what();
      }
      trial.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - trial_start).count();
      ++result.trials_run_now;
      if (options.log != nullptr)
        std::fprintf(options.log, "trial %lld, rung %lld (%lld epochs): %s %s\n",
                     static_cast<long long>(trial.id), static_cast<long long>(rung),
                     static_cast<long long>(epochs[static_cast<std::size_t>(rung)]),
                     trial.status == "failed" ? "failed:"
                                              : (options.metric + " " + std::to_string(trial.metric)).c_str(),
                     trial.status == "failed" ? trial.error.c_str() : "");
      save_state(state_file, identity, elapsed(), result.trials);
      if (options.on_trial_done) options.on_trial_done(result.trials, elapsed());
    }
    if (rung + 1 == options.rungs) break;
    // Promote the best 1/eta of this rung's population (at least one) among those that finished it.
    std::vector<std::int64_t> finished;
    for (const std::int64_t index : candidates)
      if (result.trials[static_cast<std::size_t>(index)].rung >= rung &&
          result.trials[static_cast<std::size_t>(index)].status != "failed")
        finished.push_back(index);
    std::stable_sort(finished.begin(), finished.end(), [&](std::int64_t a, std::int64_t b) {
      const TrialRecord &x = result.trials[static_cast<std::size_t>(a)],
                        &y = result.trials[static_cast<std::size_t>(b)];
      const double mx = x.rung_metrics[static_cast<std::size_t>(rung)],
                   my = y.rung_metrics[static_cast<std::size_t>(rung)];
      return mx != my ? mx > my : x.id < y.id;
    });
    const auto keep = std::min<std::size_t>(
        finished.size(), std::max<std::size_t>(1, candidates.size() / static_cast<std::size_t>(options.eta)));
    for (std::size_t i = keep; i < finished.size(); ++i) {
      TrialRecord& trial = result.trials[static_cast<std::size_t>(finished[i])];
      if (trial.rung == rung) trial.status = "stopped";
    }
    finished.resize(keep);
    std::sort(finished.begin(), finished.end());
    candidates = finished;
  }
  save_state(state_file, identity, elapsed(), result.trials);
  result.finished = !out_of_budget;
  for (const TrialRecord& trial : result.trials)
    if (trial.status != "failed" && trial.rung >= 0 &&
        (result.best < 0 || ranks_before(trial, result.trials[static_cast<std::size_t>(result.best)])))
      result.best = trial.id;
  return result;
}

void write_leaderboard(const fs::path& csv, const fs::path& markdown, const SearchResult& result,
                       const std::string& metric) {
  std::vector<const TrialRecord*> order;
  for (const TrialRecord& trial : result.trials)
    order.push_back(&trial);
  std::stable_sort(order.begin(), order.end(),
                   [](const TrialRecord* a, const TrialRecord* b) { return ranks_before(*a, *b); });
  const auto value = [](const TrialRecord& trial, const char* name) {
    const auto found = trial.validation.find(name);
    return found == trial.validation.end() ? std::string() : std::to_string(found->second);
  };
  std::ofstream out(csv);
  DSCOPE_CHECK(out.good(), IoError, "cannot write ", csv.string());
  out << "rank,trial,status,rung,epochs," << metric
      << ",validation_accuracy,validation_balanced_accuracy,seconds,optimizer,learning_rate,weight_decay,"
         "depth,"
         "width_multiplier,input_size,batch_size,augment_strength,loss,class_weight_power,label_smoothing,"
         "balanced_sampling,error\n";
  std::ostringstream md;
  md << "| rank | trial | status | rung | epochs | " << metric
     << " | val. accuracy | val. balanced acc. | time | configuration "
        "|\n|---:|---:|---|---:|---:|---:|---:|---:|---:|---|\n";
  std::int64_t rank = 0;
  for (const TrialRecord* trial : order) {
    ++rank;
    const Recipe& r = trial->recipe;
    const bool ran = trial->rung >= 0;
    out << rank << ',' << trial->id << ',' << trial->status << ',' << trial->rung << ',' << trial->epochs
        << ',' << (ran ? std::to_string(trial->metric) : "") << ',' << value(*trial, "accuracy") << ','
        << value(*trial, "balanced_accuracy") << ',' << trial->seconds << ',' << r.optimizer << ','
        << r.learning_rate << ',' << r.weight_decay << ',' << r.depth << ',' << r.width_multiplier << ','
        << r.input_size << ',' << r.batch_size << ',' << r.augment_strength << ',' << r.loss << ','
        << r.class_weight_power << ',' << r.label_smoothing << ',' << (r.balanced_sampling ? "yes" : "no")
        << ',' << data::csv_field(trial->error) << '\n';
    char time[32];
    std::snprintf(time, sizeof time, "%.0f s", trial->seconds);
    md << "| " << rank << " | " << trial->id << " | " << trial->status << " | " << trial->rung << " | "
       << trial->epochs << " | " << (ran ? std::to_string(trial->metric).substr(0, 5) : "—") << " | "
       << (ran ? value(*trial, "accuracy").substr(0, 5) : "—") << " | "
       << (ran ? value(*trial, "balanced_accuracy").substr(0, 5) : "—") << " | " << time << " | `"
       << r.describe() << "`" << (trial->error.empty() ? "" : " — " + trial->error) << " |\n";
  }
  DSCOPE_CHECK(out.good(), IoError, "writing ", csv.string(), " failed");
  std::ofstream table(markdown);
  DSCOPE_CHECK(table.good(), IoError, "cannot write ", markdown.string());
  table << "# Standard build: leaderboard\n\n"
        << (result.finished ? "The search finished every rung."
                            : "The search stopped early: its time budget ran out.")
        << " Trials are ranked by the highest rung they reached, then by " << metric
        << " on the validation split.\n\n"
        << md.str();
  DSCOPE_CHECK(table.good(), IoError, "writing ", markdown.string(), " failed");
}

}  // namespace dscope::apps
