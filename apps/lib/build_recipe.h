// Building a classifier from a folder of images: import, split, decode, train, choose the possible-cancer
// threshold, save, score. `dscope build` runs it once with the quick recipe; the standard build runs it
// for each configuration of its search.
//
// The output folder receives:
//   model.safetensors   the best epoch's weights (by validation balanced accuracy) with a full model card:
//                       labels, input size and normalisation, the possible-cancer threshold, training summary
//   split.csv           the lesion-grouped train / validation / test split (path, label, group, split)
//   training.jsonl      one line of metrics per epoch
//   import_problems.csv every file or metadata row that was skipped, and why (only when there were some)
//   report.json, report.md, *.svg   the score of the held-out test split, as `dscope score` writes it
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "apps/lib/scores.h"
#include "data/dataset.h"

namespace dscope::apps {

// One training configuration. The defaults are the quick build's recipe: a ResNet-8 on 64×64 crops, SGD
// with Nesterov momentum under a warm-up + cosine schedule, full augmentation, and cross-entropy weighted by
// smoothed inverse class frequency (power 0.5) so that the rare cancers (akiec, bcc, mel are 3–11% of
// HAM10000) are not drowned by nv without the over-correction that full inverse weights give.
struct Recipe {
  int depth = 8;
  float width_multiplier = 1.0f;
  std::int64_t input_size = 64;
  std::string optimizer = "sgd";  // "sgd" (Nesterov, momentum 0.9) or "adamw"
  float learning_rate = 0.1f;
  float weight_decay = 5e-4f;
  std::int64_t batch_size = 64;
  std::int64_t epochs = 30;
  std::int64_t warmup_epochs = 1;
  double augment_strength = 1.0;     // 0..1, see data::AugmentOptions::with_strength
  std::string loss = "weighted_ce";  // "ce", "weighted_ce" or "focal"
  double class_weight_power = 0.5;   // for weighted_ce and focal's alpha
  float label_smoothing = 0.0f;
  float focal_gamma = 2.0f;
  bool balanced_sampling = false;

  // Throws ValueError naming the field when a value is out of range or unknown.
  void validate() const;
  // "resnet8 w1 64px sgd lr 0.1 wd 0.0005 bs 64 30 ep aug 1 weighted_ce(0.5)": for logs and leaderboards.
  std::string describe() const;
};

struct BuildOptions {
  std::filesystem::path data;      // label folders, or the HAM10000 images folder when metadata is set
  std::filesystem::path metadata;  // HAM10000_metadata.csv; empty: `data` holds label folders
  std::filesystem::path out;       // created if missing
  std::uint64_t seed = 0;
  double validation_fraction = 0.15, test_fraction = 0.15;
  std::vector<std::string> positive_labels;  // empty: akiec, bcc, mel (those the data has)
  double target_sensitivity = 0.9;
  // The quick build's time budget: when the first batches show that `epochs` would not fit in this many
  // seconds, fewer epochs are trained (and the log says so). 0: no limit.
  double time_limit_seconds = 0.0;
  std::filesystem::path cache_file;  // optional disk cache of the decoded images
  bool show_progress = true;
  std::FILE* log = stderr;  // progress and messages; the final summary goes here too
};

struct BuildResult {
  std::filesystem::path model;
  std::int64_t epochs_trained = 0, best_epoch = 0;
  double best_validation_balanced_accuracy = 0.0;
  double threshold = 0.5;
  Scores test;              // of the test split (the validation split when there is no test split)
  std::string scored_part;  // "test" or "validation"
  double seconds = 0.0;
};

// The dataset a build or a score reads: label folders, or HAM10000 when metadata is given.
data::Dataset import_dataset(const std::filesystem::path& data, const std::filesystem::path& metadata,
                             const std::vector<std::string>& known_labels = {});
// Prints an import's problems (the first `limit`, then how many more) and writes all of them as CSV
// (where, reason) into `csv` when it is not empty and there are any.
void report_import_problems(const data::Dataset& dataset, std::FILE* log, const std::filesystem::path& csv,
                            std::size_t limit = 10);

BuildResult run_build(const BuildOptions& options, const Recipe& recipe);

}  // namespace dscope::apps
