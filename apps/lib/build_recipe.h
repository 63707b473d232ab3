// Building a classifier from a folder of images: import, split, decode, train, choose the possible-cancer
// threshold, save, score. `dscope build --mode quick` trains one recipe; the standard build
// (apps/lib/standard_build.h) trains many, rung by rung, with the same three stages:
//   BuildData       import, decode once, lesion-grouped split (shared by every recipe of a build);
//   RecipeTraining  one recipe's training, resumable at any epoch, keeping its best epoch's weights;
//   finish_build    the views, the logit adjustment and the possible-cancer threshold on validation, the
//                   final model file, the test score.
//
// The output folder receives:
//   model.safetensors   the best epoch's weights with a full model card: labels, input size and
//                       normalisation, the possible-cancer threshold, training summary
//   split.csv           the lesion-grouped train / validation / test split (path, label, group, split)
//   training.jsonl      one line of metrics per epoch
//   import_problems.csv every file or metadata row that was skipped, and why (only when there were some)
//   report.json, report.md, *.svg   the score of the held-out test split, as `dscope score` writes it
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "apps/lib/scores.h"
#include "apps/lib/trainer.h"
#include "data/dataset.h"
#include "data/image_cache.h"
#include "data/image_transforms.h"
#include "data/split.h"

namespace dscope::apps {

// One training configuration. The defaults are the quick build's recipe, the one the shipped model was
// built with (chosen on HAM10000's validation split, README "The shipped model"): a ResNet-8 of widths
// 24/48/96 on 64×64 crops, SGD with Nesterov momentum under a warm-up + cosine schedule, strong
// augmentation, batches that draw every label equally often so that the rare cancers (akiec, bcc, mel are
// 3–11% of HAM10000) are seen as often as nv, cross-entropy with label smoothing 0.1 against the
// over-confidence that repeating rare images brings, and an exponential average of the weights.
struct Recipe {
  int depth = 8;
  float width_multiplier = 1.5f;
  std::int64_t input_size = 64;
  std::string optimizer = "sgd";  // "sgd" (Nesterov, momentum 0.9) or "adamw"
  float learning_rate = 0.035f;
  float weight_decay = 5e-4f;
  std::int64_t batch_size = 64;
  std::int64_t epochs = 30;
  std::int64_t warmup_epochs = 1;
  double augment_strength = 0.9;    // 0..1, see data::AugmentOptions::with_strength
  std::string loss = "ce";          // "ce", "weighted_ce" or "focal"
  double class_weight_power = 0.5;  // for weighted_ce and focal's alpha
  float label_smoothing = 0.1f;
  float focal_gamma = 2.0f;
  bool balanced_sampling = true;
  // With balanced sampling, each training image is drawn ∝ 1 / its label's count^power (data::
  // balanced_epoch): 1 draws every label equally often, 0.5 ∝ the square root of its count.
  double sampling_power = 1.0;
  // Decay of the weight average the model is validated and saved with (optim/weight_average.h); 0: none,
  // the weights of the epoch's last step are used.
  double weight_average = 0.998;

  // Throws ValueError naming the field when a value is out of range or unknown.
  void validate() const;
  // "resnet8 w1.5 64px sgd lr 0.035 wd 0.0005 bs 64 30 ep aug 0.9 ce ls 0.1 balanced ema 0.998": for logs and
  // leaderboards.
  std::string describe() const;
};

nlohmann::json recipe_to_json(const Recipe& recipe);
// Throws DataError naming the field when one is missing or of the wrong type, ValueError when invalid.
Recipe recipe_from_json(const nlohmann::json& json);

struct BuildOptions {
  std::filesystem::path data;      // label folders, or the HAM10000 images folder when metadata is set
  std::filesystem::path metadata;  // HAM10000_metadata.csv; empty: `data` holds label folders
  std::filesystem::path out;       // created if missing
  std::uint64_t seed = 0;
  // A split manifest (split.csv of an earlier build on the same data) to use instead of drawing the split
  // from the seed: builds with different seeds (initialisation, augmentation) then share one split, as the
  // members of an ensemble must. Empty: the split is drawn from the seed.
  std::filesystem::path split_file;
  double validation_fraction = 0.15, test_fraction = 0.15;
  std::vector<std::string> positive_labels;  // empty: akiec, bcc, mel (those the data has)
  double target_sensitivity = 0.9;
  // The logit adjustment strength (nn/checkpoint.h): empty chooses it on validation (finish_build), 0 turns
  // the adjustment off.
  std::optional<double> logit_adjustment;
  // Views a prediction averages (nn/checkpoint.h InputSpec::views): empty chooses 1 or 8 on validation.
  std::optional<int> views;
  // Label → the recall it must reach on the validation split (apps/lib/min_recall.h); empty: none.
  std::map<std::string, double> min_recall;
  // The quick build's time budget: when the first batches show that `epochs` would not fit in this many
  // seconds, fewer epochs are trained (and the log says so). 0: no limit.
  double time_limit_seconds = 0.0;
  std::filesystem::path cache_file;  // optional disk cache of the decoded images (per input size)
  Device device = Device::cpu();     // where training runs; scoring and the saved model stay on the CPU
  // bfloat16: the training steps run under mixed precision (tensor/autocast.h); the weights stay float32.
  DType activations = DType::Float32;
  // The GPU's products (fp32, tf32, bf16; set by the caller with set_cuda_math), named in the report.
  std::string precision = "fp32";
  bool show_progress = true;
  std::FILE* log = stderr;  // progress and messages
};

// "Trained on cuda:0 in bf16 (mixed precision)." and the like, for a report's notes.
std::string training_setting(const BuildOptions& options);

// The dataset a build or a score reads: label folders, or HAM10000 when metadata is given.
data::Dataset import_dataset(const std::filesystem::path& data, const std::filesystem::path& metadata,
                             const std::vector<std::string>& known_labels = {});
// Prints an import's problems (the first `limit`, then how many more) and writes all of them as CSV
// (where, reason) into `csv` when it is not empty and there are any.
void report_import_problems(const data::Dataset& dataset, std::FILE* log, const std::filesystem::path& csv,
                            std::size_t limit = 10);

// The data of a build: imported, decoded (files that fail are removed and reported), split by lesion and
// label (split.csv written to the output folder).
class BuildData {
 public:
  // Decodes at the cache size for `input_size` first; other input sizes are decoded when first asked for.
  BuildData(const BuildOptions& options, std::int64_t input_size);

  const BuildOptions& options() const { return options_; }
  const data::Dataset& dataset() const { return dataset_; }
  const data::Dataset& part(data::Part part) const { return parts_[static_cast<std::size_t>(part)]; }
  const std::vector<std::string>& positive_labels() const { return positives_; }
  // The split's fingerprint (data/split.h split_digest), recorded in every model the build writes.
  const std::string& split_digest() const { return split_digest_; }
  // The decoded images for a network input of `input_size`, and the training images' channel statistics.
  const data::ImageCache& cache(std::int64_t input_size);
  const data::Normalization& normalization(std::int64_t input_size);

 private:
  BuildOptions options_;
  data::Dataset dataset_;
  std::array<data::Dataset, 3> parts_;
  std::vector<std::string> positives_;
  std::string split_digest_;
  std::map<std::int64_t, data::ImageCache> caches_;  // by cache side
  std::map<std::int64_t, data::Normalization> normalizations_;
};

// The selection metrics a build can choose its best epoch (and a search its best trial) by, from a
// validation confusion matrix: balanced_accuracy, macro_f1, accuracy, malignant_recall (the share of
// images of positive labels predicted as one of the positive labels).
double selection_metric(const std::string& name, const ConfusionMatrix& confusion,
                        const std::vector<std::string>& labels,
                        const std::vector<std::string>& positive_labels);
// ValueError unless `name` is one of the four.
void check_selection_metric(const std::string& name);

// One recipe's training in a folder of its own: checkpoints after every epoch (last.safetensors and
// state.safetensors: weights, optimizer state, progress) so that train_until() can be called again later,
// in this process or another, and continues where it stopped; best.safetensors holds the best epoch's
// weights by the selection metric; training.jsonl the epochs' metrics. With a weight average
// (Recipe::weight_average) every epoch is validated, and best.safetensors saved, with the averaged weights;
// average.safetensors keeps the averages for resuming.
class RecipeTraining {
 public:
  RecipeTraining(BuildData& data, const Recipe& recipe, std::filesystem::path folder,
                 std::string metric = "balanced_accuracy");
  ~RecipeTraining();

  // Trains until `epochs` epochs are done (at most recipe.epochs), resuming from the folder. Returns the
  // best value of the metric so far. Throws DivergenceError when the loss stops being finite.
  double train_until(std::int64_t epochs);
  std::int64_t epochs_done() const { return epochs_done_; }
  std::int64_t best_epoch() const { return best_epoch_; }
  // Validation metrics of the best epoch: accuracy, balanced_accuracy, loss, and the selection metric.
  const std::map<std::string, double>& best_validation() const { return best_validation_; }
  std::filesystem::path best_model() const { return folder_ / "best.safetensors"; }
  std::filesystem::path training_log() const { return folder_ / "training.jsonl"; }

 private:
  std::filesystem::path average_model() const { return folder_ / "average.safetensors"; }

  struct State;
  std::unique_ptr<State> state_;
  std::filesystem::path folder_;
  std::int64_t epochs_done_ = 0, best_epoch_ = 0;
  std::map<std::string, double> best_validation_;
};

struct BuildResult {
  std::filesystem::path model;
  std::int64_t epochs_trained = 0, best_epoch = 0;
  double best_validation_balanced_accuracy = 0.0;
  double threshold = 0.5;
  double logit_adjustment = 0.0;                     // the strength stored in the model (0: none)
  std::int64_t views = 1;                            // stored in the model
  std::map<std::string, double> min_recall_factors;  // label → its class factor, for each --min-recall label
  Scores test;              // of the test split (the validation split when there is no test split)
  std::string scored_part;  // "test" or "validation"
  double seconds = 0.0;
};

// From trained model files (a RecipeTraining's best.safetensors, or several models to combine): chooses the
// views and the logit adjustment and then the possible-cancer threshold on the validation split, writes
// DIR/model.safetensors, copies the training log to DIR/training.jsonl, and scores the test split into
// DIR/report.*. `notes` goes into report.md.
//
// Several files (or a file that is an ensemble) make an ensemble: one model file holding every network,
// whose predictions average their probabilities (nn/checkpoint.h); the choices are then made on the
// averaged probabilities, and there is no training log. Every network must be a model for the data's labels
// (ValueError), and one that records the split it was built on must have been built on this split
// (ValueError: its validation or test images could be this split's training images, or the reverse); one
// that records none gets a warning in the log.
BuildResult finish_build(BuildData& data, const std::vector<std::filesystem::path>& trained_models,
                         const std::filesystem::path& training_log, const std::string& notes);

// The logit adjustment strength in [−1, 1.5] (steps of 0.05) whose predictions have the best mean of
// accuracy and balanced accuracy: accuracy alone favours the frequent classes, balanced accuracy alone gives
// them up. `probabilities` are the network's own (rows of train_prior.size()), `truth` their labels.
double choose_adjustment_strength(const std::vector<float>& train_prior,
                                  const std::vector<float>& probabilities,
                                  const std::vector<std::int64_t>& truth);

// The quick build: BuildData, one RecipeTraining (epochs cut to fit options.time_limit_seconds),
// finish_build.
BuildResult run_build(const BuildOptions& options, const Recipe& recipe);

// A build without training: BuildData, then finish_build on the weights of model files made earlier (by
// `dscope build` on the same data and split: the same seed, or the same --split). One file: it redoes the
// choices made on validation, with the rules of this dscope, and the held-out score. Several: their
// ensemble. Throws ValueError when a file is a model for other labels than the data's.
BuildResult finish_from_weights(const BuildOptions& options,
                                const std::vector<std::filesystem::path>& weights);

}  // namespace dscope::apps
